// Dropping what system-probe no longer needs once its programs are loaded and attached, and
// reading what it holds (for status and tests).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>

#include "absl/status/status.h"

namespace dogwatch::sysprobe {

// Keeps only `keep` in the effective and permitted sets, clears the inheritable and ambient sets,
// and drops the rest from the bounding set (when CAP_SETPCAP allows), so nothing this process or
// its children exec can regain them.
absl::Status KeepOnlyCapabilities(std::initializer_list<int> keep);
// Removes one capability from the effective set only (it can be raised again).
absl::Status LowerEffective(int capability);
// Puts one permitted capability back into the effective set.
absl::Status RaiseEffective(int capability);
// The effective set as a bit mask.
uint64_t EffectiveCapabilities();
// "cap_sys_ptrace,cap_dac_read_search" for a mask.
std::string CapabilityNames(uint64_t mask);

}  // namespace dogwatch::sysprobe
