// SensorBPF is a C module so that Swift imports the event structs of sensor.h with
// the host compiler's layout; sensor.bpf.c (excluded here) is compiled for the BPF
// target by Plugins/BPFCompilerPlugin. EventLayoutTests checks that both agree.
#include "sensor.h"
