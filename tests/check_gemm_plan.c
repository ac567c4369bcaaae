/*
 * check_gemm_plan.c - the GEMM door's planning function (lib/compute/gemm.c) on a synthetic device: which
 * kernel
 * each op gets, its launch geometry, and the ops it must refuse. No OpenCL device is needed: the plan is a
 * pure function of the op, the tuning and the kernels that exist.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>

#include "compute/gemm.h"

static armt_device_tuning tune;
static armt_gemm_env env;
static size_t off0[4] = {0, 64, 128, 192}; /* aligned for every kernel */
static size_t off_odd[2] = {0, 2};         /* A offsets of 2 elements: fp32 float4 loads cannot */
static armt_gemm_op op;

static void setup(void) {
    memset(&tune, 0, sizeof tune);
    tune.gemm_tm = 64, tune.gemm_tn = 64, tune.gemm_rm = 4, tune.gemm_rn = 4;
    tune.mma_bm = 128, tune.mma_bn = 256, tune.mma_threads = 384, tune.mma_wgmma = 1;
    tune.nar_bm = 64, tune.nar_bn = 64, tune.nar_threads = 128, tune.nar_warps_n = 4;
    env = (armt_gemm_env){&tune, 132, 1, 1, 1, 1, 0, 0};
    memset(&op, 0, sizeof op);
    op.m = 1152, op.n = 2048, op.k = 2048, op.count = 4;
    op.a = (cl_mem)&op; /* any non-NULL handle: the plan never dereferences buffers */
    op.lda = 2048, op.a_off = off0, op.w = (cl_mem)&op, op.w_off = off0, op.w_bf16 = 1;
    op.c = (cl_mem)&op, op.ldc = 2048, op.c_off = off0, op.site = -1;
}

static armt_gemm_plan plan_ok(void) {
    armt_gemm_plan p;
    const char *why = armt_gemm_plan_make(&env, &op, &p);
    ck_assert_msg(why == NULL, "refused: %s", why ? why : "");
    return p;
}

static void plan_refused(void) {
    armt_gemm_plan p;
    ck_assert_ptr_nonnull(armt_gemm_plan_make(&env, &op, &p));
}

START_TEST(test_fp32_weights_go_to_clblast) {
    op.w_bf16 = 0;
    armt_gemm_plan p = plan_ok();
    ck_assert_int_eq(p.clblast, 1);
    op.epi.gate = (cl_mem)&op; /* no epilogue for fp32 weights */
    plan_refused();
    op.epi.gate = NULL;
    op.epi.out = (cl_mem)&op; /* an output buffer alone asks for nothing */
    ck_assert_int_eq(plan_ok().clblast, 1);
}
END_TEST

START_TEST(test_fp32_weights_on_tensor_cores) {
    /* a runtime with the 3xTF32 kernel: fp32 weights go there, transposed operands too */
    env.have_tf32 = 1;
    tune.tf_bm = 128, tune.tf_bn = 128, tune.tf_threads = 256;
    op.w_bf16 = 0;
    armt_gemm_plan p = plan_ok();
    ck_assert_int_eq(p.clblast, 0);
    ck_assert_int_eq(p.kernel, ARMT_K_GEMM_TF32);
    ck_assert_int_eq(p.tensor_cores, 1);
    ck_assert_uint_eq(p.lws[0], 256);
    ck_assert_uint_eq(p.lws[1], 1);
    ck_assert_uint_eq(p.tile[0], 128);
    ck_assert_uint_eq(p.tile[1], 128);
    op.trans_a = 1, op.w_kn = 1, op.skip_last = 100;
    ck_assert_int_eq(plan_ok().kernel, ARMT_K_GEMM_TF32);
    /* its 16-byte pieces need row strides and offsets of A and W in multiples of 4 floats: else CLBlast */
    op.lda = 2046;
    ck_assert_int_eq(plan_ok().clblast, 1);
    op.lda = 2048, op.ldw = 2050;
    ck_assert_int_eq(plan_ok().clblast, 1);
    op.ldw = 2048, op.count = 2, op.w_off = off_odd;
    ck_assert_int_eq(plan_ok().clblast, 1);
    op.w_off = off0, op.a_off = off_odd;
    ck_assert_int_eq(plan_ok().clblast, 1);
    op.a_off = off0;
    ck_assert_int_eq(plan_ok().kernel, ARMT_K_GEMM_TF32);
    /* C's layout is free */
    op.ldc = 2049, op.c_off = off_odd;
    ck_assert_int_eq(plan_ok().kernel, ARMT_K_GEMM_TF32);
    /* no epilogue on either path */
    op.epi.rowscale = (cl_mem)&op;
    plan_refused();
}
END_TEST

/* Split-k on the 3xTF32 kernels (plan.splitk): by one entry's shape, the kernel and the device, the same for
 * one entry and sixteen (the sequential and the diagonal schedule must agree bit for bit). The LLaMA-3.2-1B
 * sites on an H100's 132 compute units with the GPU tiles: wgmma 128 x 128 (k stages of 32) for row-major
 * operands, mma.sync 128 x 128 (k stages of 16) for W_mem (stored k x n) and the update's phi^T. */
static int splitk_of(size_t m, size_t n, size_t k, int trans_a, int w_kn, size_t count) {
    size_t offs[16] = {0};
    for (size_t j = 0; j < 16; j++)
        offs[j] = j * 1024 * 1024;
    op.m = m, op.n = n, op.k = k, op.count = count, op.trans_a = trans_a, op.w_kn = w_kn;
    op.lda = trans_a ? m : k, op.ldw = w_kn ? n : k, op.ldc = n;
    op.a_off = op.w_off = op.c_off = offs;
    armt_gemm_plan p = plan_ok();
    ck_assert_int_eq(p.kernel, trans_a || w_kn ? ARMT_K_GEMM_TF32 : ARMT_K_GEMM_TF32_WG);
    const int S = p.splitk;
    op.a_off = op.w_off = op.c_off = off0;
    return S;
}

START_TEST(test_tf32_splitk) {
    env.have_tf32 = env.have_tf32_wg = 1;
    tune.tf_bm = 128, tune.tf_bn = 128, tune.tf_bk = 16, tune.tf_threads = 256;
    tune.tw_wgm = 2, tune.tw_n = 128;
    op.w_bf16 = 0;
    /* S by rule 1 (the estimated time, docs/DESIGN.md "Split-k") and rule 2 (one wave); rule 0, the
     * default, never splits */
    static const struct {
        const char *site;
        size_t m, n, k;
        int trans_a, w_kn, S0, S1;
    } sites[] = {
        /* 144 tiles: 2 rounds unsplit; 5 rounds of quarter tiles = 1.25 + 4 slices' traffic 0.15: 0.70 */
        {"wq, wo", 1152, 2048, 2048, 0, 0, 4, 1},
        /* 36 tiles: 3 rounds of eighth tiles 0.375 + 0.075 (sixteen: 0.3125 + 0.15) */
        {"wk, wv", 1152, 512, 2048, 0, 0, 8, 2},
        {"wg, wu", 1152, 8192, 2048, 0, 0, 1, 1},  /* 576 tiles: 5 rounds, at best 4.5 + 0.3 (not 15% less) */
        {"wd", 1152, 2048, 8192, 0, 0, 8, 1},      /* 144 tiles: 9 rounds of eighths 1.125 + 0.075 */
        {"wmq", 1152, 64, 2048, 0, 0, 8, 8},       /* 9 tiles: one round of eighths (sixteenths: two) */
        {"wmk", 128, 64, 2048, 0, 0, 16, 16},      /* 1 tile: 16, slices of 128 */
        {"wmv", 128, 2048, 2048, 0, 0, 8, 8},      /* 16 tiles: 128 */
        {"mem_read", 1152, 2048, 384, 0, 1, 1, 1}, /* 144 tiles, k = 384: halves 1.5 + 0.4 */
        {"mem_prev", 128, 2048, 384, 0, 1, 2, 2},  /* 16 tiles, but slices of at least 128 of k */
        {"mem_update", 384, 2048, 128, 1, 1, 1, 1}, /* 48 tiles; k = 128 is one slice's least */
        {"decode wq (1 row)", 1, 2048, 2048, 0, 0, 8, 8},
        {"k not whole stages", 128, 64, 2056, 0, 0, 1, 1},
    };
    for (size_t i = 0; i < sizeof sites / sizeof sites[0]; i++)
        ck_assert_int_eq(splitk_of(sites[i].m, sites[i].n, sites[i].k, sites[i].trans_a, sites[i].w_kn, 1),
                         1);
    for (int r = 0; r < 2; r++) {
        const int rule = r; /* (0: the time rule, tuning value 1; 1: one wave, 2) */
        tune.splitk_rule = 1 + r;
        for (size_t i = 0; i < sizeof sites / sizeof sites[0]; i++) {
            const int want = rule ? sites[i].S1 : sites[i].S0;
            const int S1 = splitk_of(sites[i].m, sites[i].n, sites[i].k, sites[i].trans_a, sites[i].w_kn, 1);
            const int S16 =
                splitk_of(sites[i].m, sites[i].n, sites[i].k, sites[i].trans_a, sites[i].w_kn, 16);
            ck_assert_msg(S1 == want && S16 == S1, "rule %d, %s: S %d (1 entry), %d (16 entries), want %d",
                          tune.splitk_rule, sites[i].site, S1, S16, want);
        }
        /* the rows skipped and the entries' offsets do not count; a short cell counted as a full one does */
        op.skip_last = 1000;
        ck_assert_int_eq(splitk_of(1152, 512, 2048, 0, 0, 16), rule ? 2 : 8);
        op.skip_last = 0;
        op.split_rows = 1152;
        ck_assert_int_eq(splitk_of(300, 512, 2048, 0, 0, 1),
                         rule ? 2 : 8); /* (rule 1: its own 3 row tiles, 8) */
        ck_assert_int_eq(splitk_of(300, 2048, 2048, 0, 0, 1), rule ? 1 : 4); /* (its own 48 tiles: 2, 8) */
        op.split_rows = 0;
        ck_assert_int_eq(splitk_of(300, 512, 2048, 0, 0, 1), 8);
        /* (48 tiles, rule 0: 3 rounds of eighths 0.375 + 0.078) */
        ck_assert_int_eq(splitk_of(300, 2048, 2048, 0, 0, 1), rule ? 2 : 8);
        /* the device: fewer compute units, fewer slices (rule 1) or other ones */
        env.compute_units = 16;
        ck_assert_int_eq(splitk_of(128, 64, 2048, 0, 0, 1), 16);
        /* (9 tiles on 16: rule 0, 16 slices' 9 rounds of sixteenths, 0.5625 + 0.02) */
        ck_assert_int_eq(splitk_of(1152, 64, 2048, 0, 0, 1), rule ? 1 : 16);
        env.compute_units = 132;
    }
    tune.splitk_rule = 0;
    /* the knob: 1 never splits; a forced S wherever a slice keeps whole k stages */
    tune.splitk = 1;
    ck_assert_int_eq(splitk_of(128, 64, 2048, 0, 0, 1), 1);
    tune.splitk = 4;
    ck_assert_int_eq(splitk_of(1152, 8192, 2048, 0, 0, 16), 4);
    ck_assert_int_eq(splitk_of(384, 2048, 64, 1, 1, 1), 4);  /* 16 a slice: one mma.sync stage */
    ck_assert_int_eq(splitk_of(1152, 2048, 64, 0, 0, 1), 1); /* 16 a slice: half a wgmma stage */
    tune.splitk = 0;
    /* never on CLBlast nor on the bf16 kernels */
    env.have_tf32 = env.have_tf32_wg = 0;
    op.m = 128, op.n = 64, op.k = 2048, op.lda = op.ldw = 2048, op.ldc = 64, op.count = 1;
    armt_gemm_plan p = plan_ok();
    ck_assert(p.clblast && p.splitk == 1);
    op.w_bf16 = 1;
    p = plan_ok();
    ck_assert(p.tensor_cores && p.splitk == 1);
}
END_TEST

START_TEST(test_portable_without_tensor_cores) {
    env.have_mma = env.have_bb = env.have_mma_narrow = env.have_bb_narrow = 0;
    armt_gemm_plan p = plan_ok();
    ck_assert_int_eq(p.clblast, 0);
    ck_assert_int_eq(p.kernel, ARMT_K_GEMM_BF16);
    ck_assert_int_eq(p.tensor_cores, 0);
    ck_assert_uint_eq(p.lws[0], 16);
    ck_assert_uint_eq(p.lws[1], 16);
    ck_assert_uint_eq(p.tile[0], 64);
    ck_assert_uint_eq(p.tile[1], 64);
    /* the tensor-core epilogues cannot run there */
    op.epi.gate = (cl_mem)&op;
    plan_refused();
}
END_TEST

START_TEST(test_alignment_decides_tensor_cores) {
    ck_assert_int_eq(plan_ok().kernel, ARMT_K_GEMM_BF16_MMA); /* fp32 A, aligned */
    op.k = 2044;                                              /* k % 8 != 0 */
    ck_assert_int_eq(plan_ok().kernel, ARMT_K_GEMM_BF16);
    op.k = 2048;
    op.lda = 2046; /* lda % 4 != 0 */
    ck_assert_int_eq(plan_ok().kernel, ARMT_K_GEMM_BF16);
    op.lda = 2048;
    op.count = 2;
    op.a_off = off_odd; /* an entry at an offset that breaks the float4 loads */
    ck_assert_int_eq(plan_ok().kernel, ARMT_K_GEMM_BF16);
}
END_TEST

START_TEST(test_staged_a_takes_the_bf16_kernel) {
    op.a_bf16 = (cl_mem)&tune;
    armt_gemm_plan p = plan_ok();
    ck_assert_int_eq(p.kernel, ARMT_K_GEMM_BF16BF16_MMA);
    ck_assert_int_eq(p.a_bf16, 1);
    /* bf16 A needs lda % 8 == 0: the fp32 copy is used instead, unless only the bf16 copy holds A */
    op.lda = 2044;
    p = plan_ok();
    ck_assert_int_eq(p.kernel, ARMT_K_GEMM_BF16_MMA);
    ck_assert_int_eq(p.a_bf16, 0);
    op.a_bf16_only = 1;
    plan_refused();
}
END_TEST

START_TEST(test_bf16_epilogues_need_the_bf16_kernel) {
    op.epi.rope = (cl_mem)&op; /* RoPE, row scales and a second weight: only the bf16-A kernel has them */
    op.epi.rope_hd = 64;
    plan_refused();
    op.a_bf16 = (cl_mem)&tune;
    ck_assert_int_eq(plan_ok().kernel, ARMT_K_GEMM_BF16BF16_MMA);
    op.epi.rope = NULL;
    op.a_bf16 = NULL;
    op.epi.gate = (cl_mem)&op; /* SwiGLU: any tensor-core kernel */
    ck_assert_int_eq(plan_ok().kernel, ARMT_K_GEMM_BF16_MMA);
}
END_TEST

START_TEST(test_second_weight_halves_the_tile) {
    op.a_bf16 = (cl_mem)&tune;
    op.epi.w2 = (cl_mem)&op;
    armt_gemm_plan p = plan_ok();
    ck_assert_int_eq(p.kernel, ARMT_K_GEMM_BF16BF16_MMA);
    ck_assert_uint_eq(p.tile[0], 128); /* 128 columns of each weight */
    ck_assert_uint_eq(p.tile[1], 128);
    ck_assert_uint_eq(p.lws[0], 384);
}
END_TEST

START_TEST(test_narrow_tiles) {
    op.n = 64; /* narrow output (W_mq, W_mk) */
    armt_gemm_plan p = plan_ok();
    ck_assert_int_eq(p.kernel, ARMT_K_GEMM_BF16_MMA_NARROW);
    ck_assert_int_eq(p.narrow, 1);
    ck_assert_uint_eq(p.tile[0], 64);
    ck_assert_uint_eq(p.tile[1], 64);
    ck_assert_uint_eq(p.lws[0], 128);
    op.epi.bf16_out = 1, op.epi.out = (cl_mem)&op; /* no bf16 output on narrow outputs */
    ck_assert_int_eq(plan_ok().narrow, 0);
    op.epi.bf16_out = 0;
    env.have_mma_narrow = 0; /* not built */
    ck_assert_int_eq(plan_ok().kernel, ARMT_K_GEMM_BF16_MMA);
}
END_TEST

START_TEST(test_small_launches_take_the_narrow_tiles) {
    /* one cell of 128 rows, 2048 columns: 8 work-groups on 132 compute units */
    op.count = 1, op.m = 128;
    ck_assert_int_eq(plan_ok().kernel, ARMT_K_GEMM_BF16_MMA_NARROW);
    /* 4 cells of 1152 rows: 4 * 9 * 8 = 288 work-groups */
    op.count = 4, op.m = 1152;
    ck_assert_int_eq(plan_ok().kernel, ARMT_K_GEMM_BF16_MMA);
    /* the same with most of the last cell skipped still fills the GPU; a lone skipped cell does not */
    op.count = 1, op.skip_last = 1024;
    ck_assert_int_eq(plan_ok().kernel, ARMT_K_GEMM_BF16_MMA_NARROW);
    /* RoPE on narrow tiles only where a thread's columns hold whole heads (64 here) */
    op.a_bf16 = (cl_mem)&tune;
    op.epi.rope = (cl_mem)&op;
    op.epi.rope_hd = 64;
    ck_assert_int_eq(plan_ok().kernel, ARMT_K_GEMM_BF16BF16_MMA_NARROW);
    op.epi.rope_hd = 128;
    ck_assert_int_eq(plan_ok().kernel, ARMT_K_GEMM_BF16BF16_MMA);
    /* the SwiGLU gate and the row scales stay on the main tiles */
    op.epi.rope = NULL;
    op.epi.rowscale = (cl_mem)&op;
    ck_assert_int_eq(plan_ok().kernel, ARMT_K_GEMM_BF16BF16_MMA);
}
END_TEST

START_TEST(test_transposed_operands_are_fp32_only) {
    op.trans_a = 1;
    plan_refused();
    op.trans_a = 0;
    op.w_kn = 1;
    plan_refused();
    op.w_bf16 = 0;
    ck_assert_int_eq(plan_ok().clblast, 1);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("gemm_plan");
    TCase *tc = tcase_create("plan");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_fp32_weights_go_to_clblast);
    tcase_add_test(tc, test_fp32_weights_on_tensor_cores);
    tcase_add_test(tc, test_tf32_splitk);
    tcase_add_test(tc, test_portable_without_tensor_cores);
    tcase_add_test(tc, test_alignment_decides_tensor_cores);
    tcase_add_test(tc, test_staged_a_takes_the_bf16_kernel);
    tcase_add_test(tc, test_bf16_epilogues_need_the_bf16_kernel);
    tcase_add_test(tc, test_second_weight_halves_the_tile);
    tcase_add_test(tc, test_narrow_tiles);
    tcase_add_test(tc, test_small_launches_take_the_narrow_tiles);
    tcase_add_test(tc, test_transposed_operands_are_fp32_only);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
