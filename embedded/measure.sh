#!/usr/bin/env bash
# Reproduces the measurements in the README's "Running on a microcontroller":
#   1. instruction counts of masked vs dense layer operations (bench image, QEMU with
#      -icount shift=0, run twice: the counts must be identical);
#   2. flash bytes of the f32 kernels at opt-level "s" and 3 (kernels image, built with
#      and without the `size-baseline` feature; plus the kernel symbols from nm);
#   3. stack bytes per kernel call (kernels image, stack painting on the target).
# Needs qemu-system-arm and arm-none-eabi binutils (nm, size). Usage: ./measure.sh [--no-m0]
set -euo pipefail
cd "$(dirname "$0")"

M0=1
[ "${1:-}" = "--no-m0" ] && M0=0

NM=arm-none-eabi-nm
SIZE=arm-none-eabi-size
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

qemu() { # target image [extra qemu args...]
    local target=$1 image=$2
    shift 2
    local machine=(-cpu cortex-m4 -machine mps2-an386)
    [ "$target" = thumbv6m-none-eabi ] && machine=(-cpu cortex-m0 -machine microbit)
    timeout 300 qemu-system-arm "${machine[@]}" -nographic \
        -semihosting-config enable=on,target=native "$@" -kernel "$image"
}

counts() { # target
    local target=$1
    cargo build --quiet --release --target "$target" --bin bench
    local image=target/$target/release/bench
    qemu "$target" "$image" -icount shift=0 >"$out/bench1"
    qemu "$target" "$image" -icount shift=0 >"$out/bench2"
    echo
    echo "## Instruction counts, $target (qemu -icount shift=0; per call)"
    if cmp -s "$out/bench1" "$out/bench2"; then
        echo "(two runs: identical output)"
    else
        echo "two runs differ:" >&2
        diff "$out/bench1" "$out/bench2" >&2 || true
        exit 1
    fi
    cat "$out/bench1"
}

flash() { # image: vector table + .text + .rodata + .data (the bytes a flash holds)
    "$SIZE" -A "$1" | awk '$1 ~ /^\.(vector_table|text|rodata|data)$/ { s += $2 } END { print s }'
}

sizes() { # target
    local target=$1
    echo
    echo "## Flash bytes of the f32 kernels, $target"
    echo "(sampler, blas::ger, blas::gemv, the 8 single-example layer operations)"
    printf '%-10s %12s %12s %14s %16s\n' opt-level "image" "baseline" "kernels=diff" "nm kernel syms"
    for profile in release-s release; do
        local level=3
        [ $profile = release-s ] && level=s
        cargo build --quiet --profile $profile --target "$target" --bin kernels --features size-baseline
        cp "target/$target/$profile/kernels" "$out/base-$profile"
        cargo build --quiet --profile $profile --target "$target" --bin kernels
        cp "target/$target/$profile/kernels" "$out/real-$profile"
        "$NM" --size-sort -C -t d "$out/real-$profile" |
            awk '$2 ~ /^[tT]$/ { name = substr($0, index($0, $3)) }
                 $2 ~ /^[tT]$/ && (name ~ /^kernel_/ || (name ~ /bitdrop::/ && name !~ /bitdrop_embedded/)) {
                     print $1 + 0, name }' >"$out/syms-$profile"
        local image base named
        image=$(flash "$out/real-$profile")
        base=$(flash "$out/base-$profile")
        named=$(awk '{ s += $1 } END { print s + 0 }' "$out/syms-$profile")
        printf '%-10s %12d %12d %14d %16d\n' "$level" "$image" "$base" $((image - base)) "$named"
    done
    for profile in release-s release; do
        echo "nm --size-sort, kernel symbols ($profile):"
        sed 's/^/    /' "$out/syms-$profile"
    done
    for profile in release-s release; do
        echo
        echo "## Stack bytes per call, $target, $profile (painted on the target)"
        echo "(with the kernel; with the empty baseline entry point; the kernel's own = difference)"
        qemu "$target" "$out/real-$profile" | grep '^stack:' | sed 's/^stack: //; s/ bytes$//' >"$out/stack-real"
        qemu "$target" "$out/base-$profile" | grep '^stack:' | sed 's/^stack: //; s/ bytes$//' >"$out/stack-base"
        paste -d'|' "$out/stack-real" "$out/stack-base" |
            awk -F'|' '{ n = split($1, a, " "); split($2, b, " ");
                         name = a[1]; for (i = 2; i < n; i++) name = name " " a[i];
                         printf "    %-30s %5d %5d %5d\n", name, a[n], b[length(b)], a[n] - b[length(b)] }'
    done
}

counts thumbv7em-none-eabihf
sizes thumbv7em-none-eabihf
if [ $M0 = 1 ]; then
    counts thumbv6m-none-eabi
    sizes thumbv6m-none-eabi
fi
