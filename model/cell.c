// The cells by config value: the registry of cell.h as a table.
#include "model/cell.h"
#include "dist/dist.h"

#define CELL_ENTRY_(C, name) [CELL_##C] = &cell_##name,
static const cell_kind* const kinds[CELL_KINDS] = {CELL_REGISTRY(CELL_ENTRY_)};

const cell_kind* cell_of(int c)
{
    if (c < 0 || c >= CELL_KINDS) dist_fail("internal error: cell %d", c);
    return kinds[c];
}

const char* cell_name(int c)
{
    return c >= 0 && c < CELL_KINDS ? kinds[c]->name : NULL;
}

int cell_has_init(const cell_kind* k, enum cell_init init)
{
    for (int g = 0; k->b_init && g < k->gates; g++)
        if (k->b_init[g] == init) return 1;
    return 0;
}
