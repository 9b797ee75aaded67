// Helpers shared by the radix tree's source files (not a public header).
#pragma once

#include <stdexcept>
#include <string>

#include "pythia/radix_node.h"

namespace pythia::radix_detail {

[[noreturn]] inline void fail(const std::string& what) { throw std::logic_error("radix tree: " + what); }

inline std::string node_name(const RadixNode* node) { return "node " + std::to_string(node->id); }

}  // namespace pythia::radix_detail
