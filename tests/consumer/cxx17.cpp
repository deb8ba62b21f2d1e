// SPDX-License-Identifier: Apache-2.0
// A C++17 program including opreg: must not compile, and must say why in words.
#include <opreg/slot_array.hpp>

int main() { return 0; }
