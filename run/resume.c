// Resume's reads, in the order the file's one open allows (io/checkpoint.h).
#include "run/resume.h"
#include "run/setup.h"

void resume_load(const char* path, model* m, const fnn_config* c, ckpt_train* st, finetune* ft)
{
    char err[512];
    model_config ck;
    ckpt_file* f = ckpt_open(path, m->g->world, err, sizeof err);
    if (!f || ckpt_get_meta(f, &ck, st, NULL, 0)) dist_fail_all("%s", err);
    setup_check_model(path, &ck, &c->model, SETUP_SAME);
    ckpt_get_params(f, m, NULL, 1);
    if (c->carry_state) ckpt_get_state(f, m);
    if (c->init_from[0]) finetune_resume(ft, m, c, f, err, path, st->step);
    if (ckpt_close(f)) dist_fail_all("%s", err);
}
