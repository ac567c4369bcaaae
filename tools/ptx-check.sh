#!/bin/sh
# ptx-check.sh PROGRAM [-Dmacros...]: compile a program's OpenCL kernel files (with cl/common.cl and cl/mma.cl
# in front; PROGRAM is gemm, attention, or the .cl files in order, as lib/device/programs.c lists them) for NVIDIA
# without a GPU - clang (OpenCL C -> NVPTX) and ptxas (sm_90a) - and print each kernel's registers, spills
# and local memory (PTXAS_OPTS=... adds ptxas options, e.g. -maxrregcount=128). The OpenCL builtins the kernels use are mapped to NVVM intrinsics by a shim, so the
# result approximates (within a few registers) what NVIDIA's OpenCL compiler produces. Needs clang and a
# CUDA toolkit's ptxas (PTXAS=... to point at one); a maintainer's tool, not used by the build.
set -e
here=$(cd "$(dirname "$0")/.." && pwd)
case $1 in
gemm) src="$here/cl/gemm_args.h $here/cl/gemm_bf16.cl $here/cl/gemm_mma_params.cl $here/cl/gemm_mma_warp.cl"
      src="$src $here/cl/gemm_mma_epilogue.cl $here/cl/gemm_mma.cl $here/cl/gemm_mma_entries.cl"; shift ;;
attention) src="$here/cl/attention.cl $here/cl/attention_mma.cl"; shift ;;
*) src=; while [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; do src="$src $1"; shift; done ;;
esac
PTXAS=${PTXAS:-ptxas}
command -v "$PTXAS" >/dev/null 2>&1 || PTXAS=/usr/local/cuda/bin/ptxas
CLANG=${CLANG:-clang}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/shim.h" <<'SHIM'
#define get_local_id(d) ((d) == 0 ? __nvvm_read_ptx_sreg_tid_x() : (d) == 1 ? __nvvm_read_ptx_sreg_tid_y() : __nvvm_read_ptx_sreg_tid_z())
#define get_group_id(d) ((d) == 0 ? __nvvm_read_ptx_sreg_ctaid_x() : (d) == 1 ? __nvvm_read_ptx_sreg_ctaid_y() : __nvvm_read_ptx_sreg_ctaid_z())
#define get_num_groups(d) ((d) == 0 ? __nvvm_read_ptx_sreg_nctaid_x() : (d) == 1 ? __nvvm_read_ptx_sreg_nctaid_y() : __nvvm_read_ptx_sreg_nctaid_z())
#define get_local_size(d) ((d) == 0 ? __nvvm_read_ptx_sreg_ntid_x() : (d) == 1 ? __nvvm_read_ptx_sreg_ntid_y() : __nvvm_read_ptx_sreg_ntid_z())
#define get_global_id(d) (get_group_id(d) * get_local_size(d) + get_local_id(d))
#define barrier(f) __syncthreads()
#define native_exp2(x) __nvvm_ex2_approx_f(x)
#define exp(x) __nvvm_ex2_approx_f((x) * 1.4426950408889634f)
#define fmax(a, b) __builtin_fmaxf(a, b)
#define min(a, b) ((a) < (b) ? (a) : (b))
#define max(a, b) ((a) > (b) ? (a) : (b))
#define fma(a, b, c) __builtin_fmaf(a, b, c)
SHIM
cat "$tmp/shim.h" "$here/cl/common.cl" "$here/cl/mma.cl" $src > "$tmp/k.cl"
"$CLANG" -x cl -cl-std=CL1.2 -D__OPENCL_VERSION__=120 -target nvptx64-nvidia-cuda -Xclang -finclude-default-header -O3 "$@" -S "$tmp/k.cl" -o "$tmp/k.ptx" 2>&1 | grep -v "warning\|^ *[0-9]* | \|^ *|\|^ *\^\|generated" || true
# the wgmma lines behind their mark (ARMT_SM90A_MARK, lib/device/nv_ptx.c) become instructions, as the runtime does
sed -i 's/^\.target .*/.target sm_90a/; s/^\.version .*/.version 8.0/; s#//@sm90a ##g' "$tmp/k.ptx"
"$PTXAS" $PTXAS_OPTS -arch=sm_90a -v "$tmp/k.ptx" -o "$tmp/k.cubin" 2>&1 | grep -E "Compiling|registers|spill|rror|serialized" || true
