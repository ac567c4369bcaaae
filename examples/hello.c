/* hello.c - the smallest libarmt program: list the OpenCL devices, open the best one (compiling the
 * kernels), make a tiny random model and read 40 tokens.
 *   cc hello.c $(pkg-config --cflags --libs armt) -o hello && ./hello                                     */
#include <armt.h>
#include <stdio.h>

int main(void) {
    armt_device_info *devs;
    size_t n;
    if (armt_device_list(&devs, &n) != ARMT_OK) return 1;
    for (size_t i = 0; i < n; i++)
        printf("device %d.%d: %s\n", devs[i].platform_index, devs[i].device_index, devs[i].name);
    armt_device_list_free(devs);
    armt_runtime *rt;
    armt_model *model;
    armt_ctx *ctx;
    armt_config cfg;
    if (armt_runtime_create(NULL, &rt) != ARMT_OK || armt_config_preset("tiny", &cfg) != ARMT_OK ||
        armt_model_create_random(rt, &cfg, NULL, &model) != ARMT_OK ||
        armt_ctx_create(model, NULL, &ctx) != ARMT_OK) {
        fprintf(stderr, "libarmt: %s\n", armt_last_error());
        return 1;
    }
    int32_t ids[40];
    for (int i = 0; i < 40; i++)
        ids[i] = (i * 7) % cfg.vocab_size;
    float last[256];
    armt_forward_params fp = armt_forward_default_params();
    fp.output = ARMT_OUTPUT_LOGITS_LAST;
    fp.out = last;
    fp.out_count = (size_t)cfg.vocab_size;
    armt_status st = armt_forward(ctx, ids, 40, &fp);
    printf("forward: %s; first logit of the last token %.4f\n", armt_status_str(st), last[0]);
    armt_ctx_free(ctx);
    armt_model_free(model);
    armt_runtime_free(rt);
    return st == ARMT_OK ? 0 : 1;
}
