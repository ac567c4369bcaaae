#!/usr/bin/env bash
# fetch_reference.sh - puts the ARMT authors' Python sources that bench/reference_bench.py imports into .ref/
# (git-ignored; never committed, never copied into bench/), pinned, and writes .ref/COMMITS.txt.
#
#   bench/fetch_reference.sh                      # git clone both repositories from GitHub (needs network)
#   bench/fetch_reference.sh --db GITDIR --armt GITDIR [--out DIR]
#                                                 # from existing clones or bare mirrors (any git directory)
#
# What it extracts (only Python sources and the patch: a few hundred KB, no notebooks or data):
#   DIR/diagonal-batching/grouped_batching/   svtdanny/diagonal-batching at tag v0.0.1-paper (the paper's code,
#                                             docs ARMT.md §0): its top-level *.py, group_amt.patch, README.md,
#                                             requirements.txt. The authors import it as the package
#                                             `grouped_batching`, so DIR/diagonal-batching goes on sys.path.
#   DIR/armt/modeling_amt/language_modeling.py
#                                             RodkinIvan/associative-recurrent-memory-transformer at 98ea91b
#                                             (git blob 9805263, the file group_amt.patch applies to: the patch's
#                                             "index 9805263..6366aeb" line), with group_amt.patch applied, as
#                                             the diagonal-batching README's setup says (step 2d). Its README
#                                             names commit 64ea88a4 for the checkout; that commit is not in the
#                                             public history we could fetch (2026 snapshot); 98ea91b holds the
#                                             exact blob the patch was made against, and the patched result is
#                                             checked to be blob 6366aeb.
#   DIR/COMMITS.txt                           key=value lines: repositories, refs, commit ids, blobs; read by
#                                             reference_bench.py and printed under its table.
#
# Options: --db-ref REF (default v0.0.1-paper), --armt-ref REF (default 98ea91b), --out DIR (default .ref in the
# project root). The GPU machines cannot fetch anything: run this here, then pass .ref in the device call's carry.
set -euo pipefail

DB_URL=https://github.com/svtdanny/diagonal-batching
ARMT_URL=https://github.com/RodkinIvan/associative-recurrent-memory-transformer
DB_REF=v0.0.1-paper
ARMT_REF=98ea91b
LM=modeling_amt/language_modeling.py
LM_BLOB_BEFORE=9805263b47db2cdc0d26e4a334e5e05e1f2d5326
LM_BLOB_AFTER_PREFIX=6366aeb

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/.ref"
db_git=""
armt_git=""

usage() { sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --db) db_git=$2; shift 2 ;;
        --armt) armt_git=$2; shift 2 ;;
        --db-ref) DB_REF=$2; shift 2 ;;
        --armt-ref) ARMT_REF=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "fetch_reference.sh: unknown argument '$1'" >&2; usage 2 ;;
    esac
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# gitdir_for GIVEN URL NAME: the git directory of GIVEN (a clone or a bare mirror), else a bare clone of URL in $tmp
gitdir_for() {
    local given=$1 url=$2 name=$3
    if [ -n "$given" ]; then
        if [ -d "$given/.git" ]; then echo "$given/.git"; else echo "$given"; fi
    else
        git clone --quiet --bare "$url" "$tmp/$name.git" >&2
        echo "$tmp/$name.git"
    fi
}

db=$(gitdir_for "$db_git" "$DB_URL" db)
armt=$(gitdir_for "$armt_git" "$ARMT_URL" armt)

db_commit=$(git --git-dir="$db" rev-parse --verify "$DB_REF^{commit}")
armt_commit=$(git --git-dir="$armt" rev-parse --verify "$ARMT_REF^{commit}")
blob=$(git --git-dir="$armt" rev-parse "$armt_commit:$LM")
if [ "$blob" != "$LM_BLOB_BEFORE" ]; then
    echo "fetch_reference.sh: $LM at $ARMT_REF is blob $blob, not $LM_BLOB_BEFORE (group_amt.patch's base)" >&2
    exit 1
fi

rm -rf "$out/diagonal-batching" "$out/armt" "$out/COMMITS.txt"
pkg="$out/diagonal-batching/grouped_batching"
mkdir -p "$pkg" "$out/armt"

# diagonal-batching: top-level Python files plus the patch and the two text files that document the pin
mapfile -t db_files < <(git --git-dir="$db" ls-tree --name-only "$db_commit" |
    grep -E '^([^/]+\.py|group_amt\.patch|README\.md|requirements\.txt|LICENSE.*)$')
git --git-dir="$db" archive "$db_commit" -- "${db_files[@]}" | tar -x -C "$pkg"

# ARMT: the one module the paper's code imports, then the paper's patch on it
git --git-dir="$armt" archive "$armt_commit" -- "$LM" | tar -x -C "$out/armt"
# (outside any repository: inside one, git apply would skip paths that are not under the work tree's root)
(cd "$out/armt" && GIT_CEILING_DIRECTORIES=$(dirname "$PWD") git apply --whitespace=nowarn "$pkg/group_amt.patch")
after=$(git hash-object "$out/armt/$LM")
case "$after" in
    "$LM_BLOB_AFTER_PREFIX"*) ;;
    *) echo "fetch_reference.sh: patched $LM is blob $after, expected $LM_BLOB_AFTER_PREFIX..." >&2; exit 1 ;;
esac

{
    echo "# written by bench/fetch_reference.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ); the authors' code, never committed"
    echo "diagonal-batching.url=$DB_URL"
    echo "diagonal-batching.ref=$DB_REF"
    echo "diagonal-batching.commit=$db_commit"
    echo "diagonal-batching.files=${db_files[*]}"
    echo "armt.url=$ARMT_URL"
    echo "armt.ref=$ARMT_REF"
    echo "armt.commit=$armt_commit"
    echo "armt.file=$LM"
    echo "armt.blob=$blob"
    echo "armt.patch=group_amt.patch from diagonal-batching $DB_REF"
    echo "armt.blob_patched=$after"
} > "$out/COMMITS.txt"

echo "reference code in $out ($(du -sh "$out" | cut -f1)):"
sed -n '2,$p' "$out/COMMITS.txt" | grep -v '\.files=' | sed 's/^/  /'
