# regionpulse_bpf_object(NAME): NAME.bpf.c in the calling directory -> NAME.bpf.o (clang
# -target bpf, CO-RE) -> NAME.skel.h (bpftool gen skeleton), exposed as the INTERFACE target
# bpf_NAME_skel. The agent's programs live in bpf/; a program only a test or a benchmark loads
# lives beside it and is declared there. Every program sees bpf/ (regionpulse_shared.h) and its
# own directory on its include path. vmlinux.h is generated once into the build tree from the
# running kernel's BTF.

find_program(BPF_CLANG clang REQUIRED)
find_program(BPFTOOL bpftool PATHS /usr/sbin /sbin REQUIRED)

set(REGIONPULSE_BPF_GEN_DIR "${CMAKE_BINARY_DIR}/bpf_gen")
set(REGIONPULSE_VMLINUX_BTF "/sys/kernel/btf/vmlinux" CACHE FILEPATH "Kernel BTF used to generate vmlinux.h")
file(MAKE_DIRECTORY "${REGIONPULSE_BPF_GEN_DIR}")

if(NOT EXISTS "${REGIONPULSE_VMLINUX_BTF}")
  message(FATAL_ERROR
    "regionpulse needs kernel BTF to build its CO-RE BPF programs, but ${REGIONPULSE_VMLINUX_BTF} "
    "does not exist. Run on a kernel built with CONFIG_DEBUG_INFO_BTF=y, or point "
    "-DREGIONPULSE_VMLINUX_BTF=<file> at a BTF blob for the target kernel.")
endif()

add_custom_command(
  OUTPUT "${REGIONPULSE_BPF_GEN_DIR}/vmlinux.h"
  COMMAND "${BPFTOOL}" btf dump file "${REGIONPULSE_VMLINUX_BTF}" format c > "${REGIONPULSE_BPF_GEN_DIR}/vmlinux.h.tmp"
  COMMAND ${CMAKE_COMMAND} -E rename "${REGIONPULSE_BPF_GEN_DIR}/vmlinux.h.tmp" "${REGIONPULSE_BPF_GEN_DIR}/vmlinux.h"
  COMMENT "Generating vmlinux.h from ${REGIONPULSE_VMLINUX_BTF}"
  VERBATIM)
add_custom_target(bpf_vmlinux_h DEPENDS "${REGIONPULSE_BPF_GEN_DIR}/vmlinux.h")

execute_process(COMMAND uname -m OUTPUT_VARIABLE _rp_arch OUTPUT_STRIP_TRAILING_WHITESPACE)
string(REPLACE "x86_64" "x86" _rp_arch "${_rp_arch}")
string(REPLACE "aarch64" "arm64" _rp_arch "${_rp_arch}")

function(regionpulse_bpf_object name)
  set(src "${CMAKE_CURRENT_SOURCE_DIR}/${name}.bpf.c")
  set(obj "${REGIONPULSE_BPF_GEN_DIR}/${name}.bpf.o")
  set(skel "${REGIONPULSE_BPF_GEN_DIR}/${name}.skel.h")
  set(shared_dir "${PROJECT_SOURCE_DIR}/bpf")
  # clang lists the headers the program includes (-MD), wherever they live.
  add_custom_command(
    OUTPUT "${obj}"
    COMMAND "${BPF_CLANG}" -g -O2 -target bpf -D__TARGET_ARCH_${_rp_arch}
            -Wall -Werror -Wno-unused-function
            -I "${REGIONPULSE_BPF_GEN_DIR}" -I "${PROJECT_SOURCE_DIR}" -I "${shared_dir}" -I "${CMAKE_CURRENT_SOURCE_DIR}"
            -MD -MF "${obj}.d" -c "${src}" -o "${obj}"
    DEPENDS "${src}" "${REGIONPULSE_BPF_GEN_DIR}/vmlinux.h"
    DEPFILE "${obj}.d"
    COMMENT "BPF ${name}.bpf.c"
    VERBATIM)
  add_custom_command(
    OUTPUT "${skel}"
    COMMAND "${BPFTOOL}" gen skeleton "${obj}" name "${name}" > "${skel}.tmp"
    COMMAND ${CMAKE_COMMAND} -E rename "${skel}.tmp" "${skel}"
    DEPENDS "${obj}"
    COMMENT "Skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(bpf_${name}_gen DEPENDS "${skel}")
  # vmlinux.h is produced in the top-level directory; a target dependency orders it first.
  add_dependencies(bpf_${name}_gen bpf_vmlinux_h)
  add_library(bpf_${name}_skel INTERFACE)
  add_dependencies(bpf_${name}_skel bpf_${name}_gen)
  target_include_directories(bpf_${name}_skel INTERFACE "${REGIONPULSE_BPF_GEN_DIR}" "${PROJECT_SOURCE_DIR}")
  target_link_libraries(bpf_${name}_skel INTERFACE PkgConfig::LIBBPF)
endfunction()
