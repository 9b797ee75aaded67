// Workflow metadata a request carries (ARCHITECTURE.md §1), as interned ids.
#pragma once

#include <cstdint>

namespace pythia {

/// \brief The workflow a request belongs to. Strings are interned to ids by the
/// Python layer; -1 means "not given" (ordinary traffic).
struct WorkflowTags {
  /// `job` of pages left by a job that ended and was forgotten (its id may be
  /// reused): a dead private context, evicted first by `pythia`.
  static constexpr int32_t kEndedJob = -2;
  int32_t type = -1;   ///< workflow kind, e.g. "code-review"
  int32_t job = -1;    ///< running instance (job / session)
  int32_t agent = -1;  ///< role that is calling
};

/// \brief Widens the tags of a cached prefix that `user` is using: a prefix
/// used by a second job is no longer one job's private context but shared
/// (job -1), e.g. an agent's system prompt; used by a second agent or type it
/// is shared wider still. Eviction policies predict reuse at that level.
inline void share_tags(WorkflowTags& owner, const WorkflowTags& user) {
  if (owner.job != user.job) owner.job = -1;
  if (owner.type != user.type) owner.type = -1;
  if (owner.agent != user.agent || owner.type == -1) owner.agent = -1;
}

}  // namespace pythia
