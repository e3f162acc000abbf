// Transfer from a checkpoint of another task: which tensors load, which are new and why, and
// the frozen set. Every rank decides from the same config and checkpoint attributes, so all
// reach the same verdict without a collective.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "io/safetensors.h"
#include "run/finetune.h"
#include "run/setup.h"
#include "model/optim.h"

void finetune_scratch(finetune* ft, const model* m)
{
    memset(ft, 0, sizeof *ft);
    ft->n = m->ntensors;
    memset(ft->is_new, 1, (size_t)m->ntensors);
    // Every tensor trains from step 0: start = 0, Adam counting from there.
}

static const model_tensor* find(const model* m, const char* name)
{
    for (int k = 0; k < m->ntensors; k++)
        if (!strcmp(m->tensors[k].name, name)) return &m->tensors[k];
    return NULL;
}

static int same_input(const model_config* a, const model_config* b)
{
    return a->V == b->V && a->D == b->D;
}

// Why tensor t of this model does not come from the checkpoint (model ckm of config ck), in
// why; 0 when it does.
static int why_new(const model_tensor* t, const model* ckm, const model_config* c, int new_head,
                   char* why, size_t len)
{
    const model_config* ck = &ckm->c;
    const model_tensor* old = find(ckm, t->name);
    if ((t->part == PART_WO || t->part == PART_BO) && new_head) {
        if (ck->O != c->O) snprintf(why, len, "outputs %d -> %d", ck->O, c->O);
        else snprintf(why, len, "new_head");
        return 1;
    }
    if (t->part == PART_WF && (!old || ck->O != c->O || ck->task != c->task)) {
        // The fed-back signal is another one (or none was): zero keeps the recurrence as it was.
        if (!old) snprintf(why, len, "no feedback into this layer there; zero");
        else if (ck->O != c->O) snprintf(why, len, "outputs %d -> %d; zero", ck->O, c->O);
        else snprintf(why, len, "task %s -> %s; zero", config_enum_name("task", ck->task),
                      config_enum_name("task", c->task));
        return 1;
    }
    if (((t->part == PART_WX && t->layer == 0) || t->part == PART_EMBED) && (!old || !same_input(ck, c))) {
        char a[64], b[64];
        setup_input_text(ck, a, sizeof a);
        setup_input_text(c, b, sizeof b);
        snprintf(why, len, "input %s -> %s", a, b);
        return 1;
    }
    return 0;
}

static real* alloc_theta0(const model* m)
{
    real* p = malloc(m->nparams * sizeof(real));
    if (!p) dist_fail("out of memory for l2_init's copy of %zu parameters", m->nparams);
    return p;
}

void finetune_load(finetune* ft, model* m, const fnn_config* c)
{
    const char* path = c->init_from;
    const int root = m->g->world_rank == 0;
    char err[512], why[160];
    model_config ck;
    // A safetensors file (by content) holds no run config: its shapes and metadata give what
    // they can of the model, the run's config the rest (io/safetensors.h).
    st_file sf = {0};
    // One collective so that every rank takes the same branch (a rank that cannot read the file
    // then fails in st_read, and all agree on that below).
    const int st = dist_any(st_is_safetensors(path), m->g);
    if (dist_comm_agree(st && st_read(path, &sf, err, sizeof err), err, sizeof err, m->g->world))
        dist_fail_all("init_from = %s", err);
    // A checkpoint is opened once for its metadata and parameters.
    ckpt_file* f = NULL;
    if (st) st_model_config(&sf, &m->c, &ck);
    else if (!(f = ckpt_open(path, m->g->world, err, sizeof err)) || ckpt_get_meta(f, &ck, NULL, NULL, 0))
        dist_fail_all("%s", err);
    setup_check_model(path, &ck, &m->c, c->new_head ? SETUP_TRANSFER_NEW_HEAD : SETUP_TRANSFER);
    model ckm; // the checkpoint's tensor names and full shapes
    model_layout(&ckm, &ck, 1, 0);
    memset(ft, 0, sizeof *ft);
    ft->n = m->ntensors;
    for (int k = 0; k < m->ntensors; k++) {
        const model_tensor* t = &m->tensors[k];
        ft->is_new[k] = (unsigned char)why_new(t, &ckm, &m->c, c->new_head, why, sizeof why);
        ft->transferred[k] = !ft->is_new[k];
        // Every new tensor trains in the head stage: a new input projection must not stay random.
        ft->head_only[k] = ft->is_new[k];
        ft->start[k] = -1;
        if (ft->is_new[k] && t->part == PART_WF) model_zero_tensor(m, t);
        if (!root) continue;
        if (ft->is_new[k]) printf("new %s (%s)\n", t->name, why);
        else printf("loaded %s\n", t->name);
    }
    for (int k = 0; k < ckm.ntensors && root; k++)
        if (!find(m, ckm.tensors[k].name)) printf("dropped %s (not in this model)\n", ckm.tensors[k].name);
    // Every rank reads the same bytes, so st_load's verdict is the same on every rank.
    if (st ? st_load(path, &sf, m, ft->transferred, err, sizeof err)
           : (ckpt_get_params(f, m, ft->transferred, 0), ckpt_close(f)))
        dist_fail_all("%s", err);
    st_free(&sf);
    if (root) printf("parameters from %s%s\n", path, c->new_head ? " (new head)" : "");
    if (c->l2_init > 0) {
        ft->theta0 = alloc_theta0(m);
        memcpy(ft->theta0, m->params, m->nparams * sizeof(real));
    }
}

void finetune_resume(finetune* ft, model* m, const fnn_config* c, ckpt_file* f, const char* err,
                     const char* path, long step)
{
    if (c->l2_init > 0) ft->theta0 = alloc_theta0(m);
    ckpt_get_finetune(f, m, ft->transferred, ft->start, ft->theta0);
    if (ckpt_ok(f)) dist_fail_all("%s", err);
    for (int k = 0; k < m->ntensors; k++)
        if (ft->start[k] >= step)
            dist_fail_all("%s: /finetune/optim_start gives %s step %ld, not before /train/step = %ld "
                          "(damaged file?)", path, m->tensors[k].name, ft->start[k], step);
    for (int k = 0; k < m->ntensors; k++) ft->is_new[k] = ft->head_only[k] = !ft->transferred[k];
}

void finetune_freeze(finetune* ft, const model* m, const fnn_config* c)
{
    char list[sizeof c->freeze];
    snprintf(list, sizeof list, "%s", c->freeze);
    for (char* item = strtok(list, ", "); item; item = strtok(NULL, ", ")) {
        size_t n = strlen(item);
        int hit = 0;
        for (int k = 0; k < m->ntensors; k++) {
            // An item is a name, a prefix ending at '/', or (gated cells) a name without its
            // gate's suffix: layer0/Wh names every gate's layer0/Wh_*.
            const char* name = m->tensors[k].name;
            const char end = name[n];
            if (!strncmp(name, item, n) && (end == 0 || end == '/' || (end == '_' && m->cell->gate_name)))
                ft->frozen[k] = hit = 1;
        }
        if (!hit) dist_fail_all("freeze = %s: no tensor or layer '%s' in this model", c->freeze, item);
    }
    int trainable = 0;
    for (int k = 0; k < m->ntensors; k++) {
        trainable += !ft->frozen[k];
        if (ft->frozen[k]) ft->start[k] = -1;
    }
    if (!trainable) dist_fail_all("freeze = %s: leaves nothing to train", c->freeze);
    int head = 0;
    for (int k = 0; k < m->ntensors; k++) head += ft->head_only[k] && !ft->frozen[k];
    if (c->head_only_steps > 0 && !head)
        dist_fail_all("head_only_steps = %d: no new head, Wf or input to train (%s)", c->head_only_steps,
                      c->new_head ? "freeze names them" : "set new_head = true");
}

const double* finetune_plan(finetune* ft, const fnn_config* c, long s, model* m)
{
    const int head_stage = s < c->head_only_steps;
    int all_one = 1;
    unsigned char no_grad[MODEL_MAX_TENSORS] = {0};
    for (int k = 0; k < m->ntensors; k++) {
        const int trains = !ft->frozen[k] && (ft->head_only[k] || !head_stage);
        no_grad[k] = !trains;
        ft->scale[k] = !trains ? 0 : ft->transferred[k] ? c->body_lr_scale : 1;
        ft->l2[k] = trains && ft->transferred[k];
        if (trains && ft->start[k] < 0) ft->start[k] = s;
        all_one &= ft->scale[k] == 1;
    }
    model_set_no_grad(m, no_grad);
    if (s == c->head_only_steps && s > 0 && m->g->world_rank == 0)
        printf("step %ld: head_only_steps = %d done, the body trains from here\n", s + 1, c->head_only_steps);
    return all_one ? NULL : ft->scale;
}

void finetune_regularise(const finetune* ft, const fnn_config* c, model* m)
{
    if (ft->theta0) optim_add_l2_init(m, ft->theta0, ft->l2, c->l2_init);
}

void finetune_ckpt(finetune* ft, const fnn_config* c, long s, const model* m, ckpt_train* st)
{
    // Without init_from (and so without freeze or head_only_steps, which need it) every tensor
    // has moments from step 0 and /finetune is not written.
    if (!c->init_from[0]) return;
    // Moments exist for what has trained before step s; the rest start from zero on resume.
    for (int k = 0; k < m->ntensors; k++) ft->optim_state[k] = ft->start[k] >= 0 && ft->start[k] < s;
    st->transferred = ft->transferred;
    st->optim_state = ft->optim_state;
    st->start = ft->start;
    st->theta0 = ft->theta0;
}

void finetune_free(finetune* ft)
{
    free(ft->theta0);
    ft->theta0 = NULL;
}
