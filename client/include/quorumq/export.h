#pragma once
// The library is built with hidden symbols; only what carries QUORUMQ_API is exported.
#define QUORUMQ_API __attribute__((visibility("default")))
