#ifndef CADUCEUS_SENSOR_LAYOUT_H
#define CADUCEUS_SENSOR_LAYOUT_H

// The host compiler's layout of every struct and the values of every enum that sensor.h shares
// with the BPF programs, as tables (sensor_layout.c). EventLayoutTests compares them with the
// BPF object's BTF (what clang laid out for the BPF target) and with the Swift mirrors of the
// enums: one table-driven test over everything shared with C.

#include <stddef.h>

struct sensor_layout_member {
    const char *structure;
    const char *member;
    size_t offset;
    size_t size;
};

struct sensor_layout_struct {
    const char *name;
    size_t size;
};

struct sensor_layout_enumerator {
    const char *enumeration;
    const char *name;
    long long value;
};

/// The tables, one entry at a time (Swift cannot index an unsized extern array); NULL past the end.
const struct sensor_layout_struct *sensor_layout_struct_at(size_t index);
const struct sensor_layout_member *sensor_layout_member_at(size_t index);
const struct sensor_layout_enumerator *sensor_layout_enumerator_at(size_t index);

#endif
