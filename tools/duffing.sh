#!/bin/sh
# A noisy driven Duffing oscillator as CSV for `fnn prepare --kind csv --inputs 1`, the dense
# regression task of `make finetune-demo`.
#
#   usage: tools/duffing.sh ROWS SEED > out.csv        one row per sample: u,x
#
# The oscillator (double well, in its chaotic regime for the periodic part of the drive):
#
#   x'' + delta x' - x + x^3 = gamma cos(omega t) + u(t) + sigma w(t)
#
# delta = 0.3, gamma = 0.5, omega = 1.2; u(t) is a random drive the model sees (an
# Ornstein-Uhlenbeck process: time constant 2, standard deviation 0.3), w(t) white noise the
# model does not see (sigma = 0.2, the process noise). Euler-Maruyama steps of dt = 0.02; every
# 5th step (0.1 time units) is one row: the input is u, the target is the position x plus
# measurement noise of standard deviation 0.02. Because of the chaos and the hidden noise, x
# cannot be recovered from the drive alone; a model that is shown the previous observed x (fed
# back with feedback_source = target) can predict it one row ahead.
set -eu
rows=${1:?usage: tools/duffing.sh ROWS SEED}
seed=${2:?usage: tools/duffing.sh ROWS SEED}
awk -v rows="$rows" -v seed="$seed" '
function gauss() { return sqrt(-2 * log(1 - rand())) * cos(6.283185307179586 * rand()) }
BEGIN {
    srand(seed)
    delta = 0.3; gamma = 0.5; omega = 1.2; sigma = 0.2; tau = 2; su = 0.3; dt = 0.02; substeps = 5
    x = 1; v = 0; u = 0; t = 0
    for (n = 0; n < rows; n++) {
        for (k = 0; k < substeps; k++) {
            u += -u / tau * dt + su * sqrt(2 * dt / tau) * gauss()
            a = -delta * v + x - x * x * x + gamma * cos(omega * t) + u
            x += v * dt
            v += a * dt + sigma * sqrt(dt) * gauss()
            t += dt
        }
        printf "%.5f,%.5f\n", u, x + 0.02 * gauss()
    }
}'
