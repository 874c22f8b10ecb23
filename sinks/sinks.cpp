#include "sinks/sink.hpp"
