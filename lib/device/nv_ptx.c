/*
 * nv_ptx.c - Hopper wgmma from OpenCL. NVIDIA's OpenCL compiler targets plain sm_90, where wgmma does not
 * exist (it is an sm_90a feature), so the kernels write each wgmma instruction as a PTX comment that starts
 * with ARMT_SM90A_MARK. After building the source, the host takes the program's PTX (what NVIDIA returns as
 * the program binary), turns the marked comments into instructions, retargets the module to sm_90a (PTX ISA
 * 8.0 at least) and builds that with clCreateProgramWithBinary. bench/gemm_bf16_test.c links this file
 * too (it needs nothing else of the library).
 */
#include "device/nv_ptx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_ident(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Entry directives: a copy of ptx where each ARMT_SM90A_ENTRY_MARK line inside an entry's body is gone and
 * its text (up to the end of the line) is written, on its own line, just before that body's opening brace.
 * The body is the first top-level '{' after ".entry" up to its matching '}'. NULL: out of memory. */
static char *move_entry_directives(const char *ptx, size_t len, size_t *out_len) {
    const char *em = ARMT_SM90A_ENTRY_MARK;
    const size_t eml = strlen(em);
    char *out = malloc(len + 1);
    if (!out) return NULL;
    size_t o = 0, i = 0;
    while (i < len) {
        const char *ent = strstr(ptx + i, ".entry ");
        if (!ent || (size_t)(ent - ptx) >= len) break;
        const char *brace = strchr(ent, '{');
        if (!brace || (size_t)(brace - ptx) >= len) break;
        /* the body's end: braces balance (inline-asm blocks nest inside it) */
        size_t b = (size_t)(brace - ptx), end = b;
        int depth = 0;
        for (; end < len; end++) {
            if (ptx[end] == '{')
                depth++;
            else if (ptx[end] == '}' && --depth == 0)
                break;
        }
        /* everything up to the brace, then the directives found in the body, then the body without them */
        memcpy(out + o, ptx + i, b - i);
        o += b - i;
        for (size_t k = b; k + eml <= end; k++)
            if (!strncmp(ptx + k, em, eml)) {
                size_t e = k + eml;
                while (e < end && ptx[e] != '\n')
                    e++;
                memcpy(out + o, ptx + k + eml, e - (k + eml));
                o += e - (k + eml);
                out[o++] = '\n';
            }
        for (size_t k = b; k < end && k < len;) {
            if (k + eml <= end && !strncmp(ptx + k, em, eml)) {
                while (k < end && ptx[k] != '\n')
                    k++;
                continue;
            }
            out[o++] = ptx[k++];
        }
        i = end;
    }
    memcpy(out + o, ptx + i, len - i);
    o += len - i;
    out[o] = '\0';
    *out_len = o;
    return out;
}

char *armt_ptx_to_sm90a(const char *ptx_in, size_t len_in, size_t *out_len) {
    size_t len = 0;
    char *moved = move_entry_directives(ptx_in, len_in, &len);
    if (!moved) return NULL;
    const char *ptx = moved;
    const char *mark = ARMT_SM90A_MARK;
    size_t ml = strlen(mark);
    /* worst case growth: ".target sm_90" -> "sm_90a" (1 byte) and ".version" rewritten (a few bytes) */
    char *out = malloc(len + 64);
    if (!out) {
        free(moved);
        return NULL;
    }
    size_t o = 0, i = 0, marks = 0;
    int target_done = 0, version_done = 0;
    while (i < len) {
        /* at the start of a line? directives are only recognised there (after blanks) */
        if (i == 0 || ptx[i - 1] == '\n') {
            size_t j = i;
            while (j < len && (ptx[j] == ' ' || ptx[j] == '\t'))
                j++;
            if (!version_done && len - j > 9 && !strncmp(ptx + j, ".version ", 9)) {
                int maj = 0, mnr = 0;
                if (sscanf(ptx + j + 9, "%d.%d", &maj, &mnr) == 2) {
                    version_done = 1;
                    if (maj < 8) {
                        /* copy the blanks, write ".version 8.0", skip the old number */
                        memcpy(out + o, ptx + i, j - i);
                        o += j - i;
                        o += (size_t)sprintf(out + o, ".version 8.0");
                        i = j + 9;
                        while (i < len && ptx[i] != '\n')
                            i++;
                        continue;
                    }
                }
            }
            if (!target_done && len - j > 8 && !strncmp(ptx + j, ".target ", 8)) {
                /* copy the line, turning the token sm_90 into sm_90a */
                size_t e = j;
                while (e < len && ptx[e] != '\n')
                    e++;
                const char *line = ptx + i;
                size_t ll = e - i, k = 0;
                while (k < ll) {
                    if (k + 5 <= ll && !strncmp(line + k, "sm_90", 5) &&
                        (k + 5 == ll || !is_ident(line[k + 5])) && (k == 0 || !is_ident(line[k - 1]))) {
                        memcpy(out + o, "sm_90a", 6);
                        o += 6;
                        k += 5;
                        target_done = 1;
                    } else {
                        out[o++] = line[k++];
                    }
                }
                i = e;
                if (!target_done) break; /* another architecture: not ours to retarget */
                continue;
            }
        }
        if (ptx[i] == mark[0] && len - i >= ml && !strncmp(ptx + i, mark, ml)) {
            i += ml;
            marks++;
            continue;
        }
        out[o++] = ptx[i++];
    }
    free(moved);
    if (!target_done || marks == 0) {
        free(out);
        return NULL;
    }
    out[o] = '\0';
    if (out_len) *out_len = o;
    return out;
}

cl_int armt_nv_rebuild_sm90a(cl_context ctx, cl_device_id dev, cl_program built, const char *options,
                             cl_program *out) {
    *out = NULL;
    size_t sz = 0;
    cl_int e = clGetProgramInfo(built, CL_PROGRAM_BINARY_SIZES, sizeof sz, &sz, NULL);
    if (e != CL_SUCCESS) return e;
    if (sz == 0) return CL_INVALID_BINARY;
    unsigned char *bin = malloc(sz + 1);
    if (!bin) return CL_OUT_OF_HOST_MEMORY;
    unsigned char *bins[1] = {bin};
    e = clGetProgramInfo(built, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL);
    if (e != CL_SUCCESS) {
        free(bin);
        return e;
    }
    bin[sz] = 0;
    size_t pl = 0;
    char *ptx = armt_ptx_to_sm90a((const char *)bin, strlen((const char *)bin), &pl);
    free(bin);
    if (!ptx) return CL_INVALID_BINARY; /* not PTX for sm_90, or no marked instruction */
    const unsigned char *pp = (const unsigned char *)ptx;
    cl_int bst = CL_SUCCESS;
    cl_program p = clCreateProgramWithBinary(ctx, 1, &dev, &pl, &pp, &bst, &e);
    free(ptx);
    if (e != CL_SUCCESS) return e;
    *out = p;
    return clBuildProgram(p, 1, &dev, options, NULL, NULL);
}

char *armt_build_log(cl_program p, cl_device_id d) {
    size_t n = 0;
    if (clGetProgramBuildInfo(p, d, CL_PROGRAM_BUILD_LOG, 0, NULL, &n) != CL_SUCCESS || n <= 1) return NULL;
    char *log = malloc(n + 1);
    if (!log) return NULL;
    if (clGetProgramBuildInfo(p, d, CL_PROGRAM_BUILD_LOG, n, log, NULL) != CL_SUCCESS) n = 0;
    log[n] = '\0';
    return log;
}
