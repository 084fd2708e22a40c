// HoldGrpcCallbackQueue: keeps gRPC's process-wide callback completion queue alive for the
// life of the process.
//
// gRPC 1.51 on Linux serves the C++ callback API (every stream and server here) from one
// completion queue shared by the whole process, with threads of its own, because its I/O
// manager has no background poller. Channels and servers hold references to it; when the
// last one goes, gRPC shuts the queue down and joins its threads, and a channel that starts
// a call during that teardown races it: a completion queue unreferenced twice ("double free
// or corruption", seen in AggregatorStreamTest and under AddressSanitizer). An agent that
// replaces its last aggregator stream, or a test binary that creates and destroys streams
// and servers one after another, does exactly that. With one reference held until exit the
// teardown never runs.
#pragma once

namespace regionpulse {

// Idempotent and thread-safe; call before creating the first channel or server.
void HoldGrpcCallbackQueue();

}  // namespace regionpulse
