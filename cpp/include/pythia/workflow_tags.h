// Workflow metadata a request carries (ARCHITECTURE.md §1), as interned ids.
#pragma once

#include <cstdint>

namespace pythia {

/// \brief The workflow a request belongs to. Strings are interned to ids by the
/// Python layer; -1 means "not given" (ordinary traffic).
struct WorkflowTags {
  int32_t type = -1;   ///< workflow kind, e.g. "code-review"
  int32_t job = -1;    ///< running instance (job / session)
  int32_t agent = -1;  ///< role that is calling
};

}  // namespace pythia
