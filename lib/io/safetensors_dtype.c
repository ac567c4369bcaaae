/*
 * safetensors_dtype.c - the element types of safetensors files: names, sizes, and half-precision values.
 */
#include "config.h"

#include "io/safetensors.h"

#include <string.h>

/* ===================================================================================================== */
/* Half precision                                                                                        */
/* ===================================================================================================== */

static float bits_to_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* bfloat16 is the top half of a float32. */
float st_bf16_to_f32(uint16_t h) { return bits_to_f32((uint32_t)h << 16); }

/* IEEE binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits. Every half value is exactly a float. */
float st_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0) {
        if (mant == 0) return bits_to_f32(sign); /* +-0 */
        /* Subnormal: mant * 2^-24. Shift the mantissa up until its implicit bit (bit 10) is set, lowering
         * the exponent once per shift; float exponent field of 2^-14 is 127 - 14 = 113. */
        uint32_t e = 113;
        while (!(mant & 0x400)) {
            mant <<= 1;
            e--;
        }
        mant &= 0x3ff;
        return bits_to_f32(sign | (e << 23) | (mant << 13));
    }
    if (exp == 31) /* inf (mant 0) or NaN; the payload keeps its top bit, so quiet stays quiet */
        return bits_to_f32(sign | 0x7f800000u | (mant << 13));
    return bits_to_f32(sign | ((exp + 112) << 23) | (mant << 13)); /* rebias 15 -> 127 */
}

static const struct {
    const char *name;
    st_dtype dt;
    size_t size;
} dtype_table[] = {
    {"F32", ST_F32, 4},
    {"F16", ST_F16, 2},
    {"BF16", ST_BF16, 2},
    {"I32", ST_I32, 4}, /* written, never read */
};

size_t st_dtype_size(st_dtype dt) {
    for (size_t i = 0; i < sizeof dtype_table / sizeof dtype_table[0]; i++)
        if (dtype_table[i].dt == dt) return dtype_table[i].size;
    return 0;
}

const char *st_dtype_name(st_dtype dt) {
    for (size_t i = 0; i < sizeof dtype_table / sizeof dtype_table[0]; i++)
        if (dtype_table[i].dt == dt) return dtype_table[i].name;
    return "?";
}

int st_dtype_parse(const char *name, st_dtype *out) {
    for (size_t i = 0; i < sizeof dtype_table / sizeof dtype_table[0]; i++)
        if (strcmp(name, dtype_table[i].name) == 0) {
            *out = dtype_table[i].dt;
            return 0;
        }
    return -1;
}
