// The fed-back signal f_t and its gradient: what the feedback path carries from the output at
// step t to every layer with feedback at step t+1.
//
// The training draws (the teacher choice of feedback_source = mix, the noise of feedback_noise)
// are functions of (window key, global batch row, t, o) from the counter-based generator, never
// of a stream, so every TP x DP layout draws the same values: the TP ranks of a replica, which
// all form the whole f, agree, and a DP replica draws for its rows what one rank would (every
// rank running the same kernel variant, whose vector logf, sinf and cosf round its own way).
#include <string.h>
#include "model/feedback.h"
#include "model/init.h"
#include "model/kernel.h"
#include "model/mix.h"

uint64_t feedback_key(uint64_t seed, long step)
{
    return splitmix64(init_key(seed, "feedback") ^ (uint64_t)step);
}

int feedback_teacher(const model_batch* bt, long row, int t)
{
    return bt->teacher_prob > 0 && init_uniform(init_key(bt->fb_key, "teacher"), row, t) < bt->teacher_prob;
}

// Box-Muller pairs per call of kernel->normal: a multiple of every variant's vector width, and
// always all of them, so that a pair's value does not depend on where a row ends.
enum { PAIRS = 64 };

// f_t += sigma z with z standard normal: Box-Muller on the two 24-bit halves of one 64-bit draw
// gives elements o and o + 1 (a pair per draw, in float, vectorised by kernel->normal: the noise
// costs a fraction of a step even where O is large next to H), so the noise is a function of
// (key, global row, t, o / 2).
static void add_noise(const model_batch* bt, int B, int O, int t, real* f)
{
    const uint64_t key = init_key(bt->fb_key, "noise");
    const float sigma = (float)bt->fb_noise;
    float u1[PAIRS], u2[PAIRS], z0[PAIRS], z1[PAIRS];
    for (int b = 0; b < B; b++) {
        real* fb = f + (size_t)b * O;
        const uint64_t row = mix_row(key, (uint64_t)(bt->row0 + b), t);
        for (int o0 = 0; o0 < O; o0 += 2 * PAIRS) {
            const int n = (O - o0 + 1) / 2 < PAIRS ? (O - o0 + 1) / 2 : PAIRS;
            for (int i = 0; i < PAIRS; i++) {
                const uint64_t x = i < n ? mix_at(row, (uint64_t)(o0 + 2 * i)) : 0;
                u1[i] = (float)((x >> 40) + 1) * 0x1.0p-24f; // (0, 1]: log is finite
                u2[i] = (float)(x & 0xffffff) * 0x1.0p-24f;
            }
            kernel->normal(z0, z1, u1, u2, sigma, PAIRS);
            for (int i = 0; i < n; i++) {
                fb[o0 + 2 * i] += z0[i];
                if (o0 + 2 * i + 1 < O) fb[o0 + 2 * i + 1] += z1[i];
            }
        }
    }
}

// Row b of f_t is the true target of step t: the regress target, or the next token one-hot.
static void target_row(const model_batch* bt, int B, int O, int t, int b, real* fb)
{
    if (bt->target) {
        memcpy(fb, bt->target + ((size_t)t * B + b) * O, (size_t)O * sizeof(real));
    } else {
        memset(fb, 0, (size_t)O * sizeof(real));
        fb[bt->next[t * B + b]] = 1;
    }
}

void feedback_signal(model* m, const model_batch* bt, int t, real* f, const real* y)
{
    const int B = m->B, O = m->c.O;
    if (m->c.feedback_source == FBS_TARGET) {
        for (int b = 0; b < B; b++) target_row(bt, B, O, t, b, f + (size_t)b * O);
    } else {
        if (m->c.task == TASK_REGRESS) memcpy(f, y, (size_t)B * O * sizeof(real));
        else kernel->softmax(f, y, B, O);
        if (m->c.feedback_source == FBS_MIX)
            for (int b = 0; b < B; b++)
                if (feedback_teacher(bt, bt->row0 + b, t)) target_row(bt, B, O, t, b, f + (size_t)b * O);
    }
    if (bt->fb_noise > 0) add_noise(bt, B, O, t, f);
}

// The feedback path: f_{t-1} entered every layer with feedback at step t. Through the softmax,
// dy = p * (df - <df, p>); for MSE tasks f = y and dy = df. F holds the noisy f, so with noise
// the softmax p is formed again from y.
void feedback_grad(model* m, const model_batch* bt, int t, real* const* cur)
{
    if (m->c.feedback == FB_NONE || m->c.feedback_source == FBS_TARGET) return;
    const int B = m->B, O = m->c.O;
    real* dy = m->dY + (size_t)(t - 1) * B * O;
    const real* y = m->Y + (size_t)(t - 1) * B * O;
    const real* p = m->F + (size_t)(t - 1) * B * O;
    for (int b = 0; b < B; b++) {
        if (m->c.feedback_source == FBS_MIX && feedback_teacher(bt, bt->row0 + b, t - 1)) continue;
        real df[O], clean[O];
        memset(df, 0, sizeof df);
        for (int l = 0; l < m->c.L; l++) {
            if (!m->Of[l]) continue;
            const real* d = cur[l] + (size_t)b * m->K[l] + m->fc[l];
            for (int o = 0; o < O; o++) df[o] += d[o];
        }
        real* dyb = dy + (size_t)b * O;
        if (m->c.task == TASK_REGRESS) {
            for (int o = 0; o < O; o++) dyb[o] += df[o];
            continue;
        }
        const real* pb = p + (size_t)b * O;
        if (bt->fb_noise > 0) {
            kernel->softmax(clean, y + (size_t)b * O, 1, O);
            pb = clean;
        }
        double dot = 0;
        for (int o = 0; o < O; o++) dot += (double)df[o] * pb[o];
        for (int o = 0; o < O; o++) dyb[o] += pb[o] * (real)(df[o] - dot);
    }
}
