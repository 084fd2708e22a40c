// The tcx parts of the kernel's BPF UAPI (Linux 6.6) that Debian 12's headers lack
// (linux-libc-dev 6.1), for everything that attaches tc programs with bpf_link_create.
#pragma once

#include <linux/bpf.h>

#include <cstdint>

namespace regionpulse {

// enum bpf_attach_type's BPF_TCX_INGRESS and BPF_TCX_EGRESS: kernel ABI, so the numbers are
// fixed. libbpf 1.1 has no bpf_program__attach_tcx either; bpf_link_create takes these.
inline constexpr bpf_attach_type kTcxIngress = static_cast<bpf_attach_type>(46);
inline constexpr bpf_attach_type kTcxEgress = static_cast<bpf_attach_type>(47);
// BPF_F_BEFORE: with no relative program given, the link goes to the head of the chain.
inline constexpr uint32_t kBpfFBefore = 1U << 3;

}  // namespace regionpulse
