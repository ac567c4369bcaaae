/*
 * stb_ds_impl.c - the one translation unit that compiles stb_ds (header-only, from libstb-dev; no -lstb).
 */
#include "config.h"

#define STB_DS_IMPLEMENTATION
#include <stb/stb_ds.h>
