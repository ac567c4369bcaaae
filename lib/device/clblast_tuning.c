/*
 * clblast_tuning.c - the CLBlast kernel parameters the library gives the devices it was measured on
 * (armt_clblast_tune, clblast.h). CLBlast 1.5.3's own database has no entry for Hopper and runs it on its
 * defaults. Each entry is the best result of one of CLBlast's tuners (Debian package clblast-utils) run on
 * that device for single precision; the commands and raw outputs are under docs/perf/results/ (source).
 */
#include "config.h"

#include "device/clblast.h"

#define H100_2026_12_06 "docs/perf/results/2026-12-06-h100-clblast-tuning-fp32.md"

const armt_clblast_entry armt_clblast_table[] = {
    /* NVIDIA H100 80GB HBM3, driver 580: the first search of each tuner (partial: fraction 1/16, 140 s);
     * the 1B fp32 diagonal 3% faster, the sequential unchanged */
    {"H100", "Xgemm",
     "GEMMK=0 KREG=1 KWG=32 KWI=2 MDIMA=8 MDIMC=8 MWG=64 NDIMB=8 NDIMC=8 NWG=64 SA=1 SB=1 STRM=0 STRN=0 "
     "VWM=4 VWN=4",
     H100_2026_12_06},
    {"H100", "XgemmDirect", "KWID=2 MDIMAD=16 MDIMCD=16 NDIMBD=8 NDIMCD=8 PADA=1 PADB=1 VWMD=1 VWND=1 WGD=32",
     H100_2026_12_06},
    {NULL, NULL, NULL, NULL}, /* the end of the list */
};
const size_t armt_clblast_table_len = sizeof armt_clblast_table / sizeof armt_clblast_table[0] - 1;
