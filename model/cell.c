// The cells by config value.
#include "model/cell.h"
#include "dist/dist.h"

const cell_kind* cell_of(int c)
{
    switch (c) {
    case CELL_ELMAN:
        return &cell_elman;
    case CELL_GRU:
        return &cell_gru;
    case CELL_LSTM:
        return &cell_lstm;
    }
    dist_fail("internal error: cell %d", c);
}
