#include "sources/source.hpp"
