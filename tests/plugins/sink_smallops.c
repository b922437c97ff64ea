/* A sink whose operation table claims to be smaller than ABI 1.0's. */
#include "test_plugin_ops.h"

static const struct gw_sink_ops ops = {
        .struct_size = sizeof(size_t),
        .open = test_open,
        .ensure_folder = test_ensure_folder,
        .append = test_append,
        .flush = test_flush,
        .close = test_close,
};

static const struct gw_plugin plugin = {
        GW_PLUGIN_HEADER,
        .kind = GW_PLUGIN_SINK,
        .name = "smallops",
        .sink = &ops,
};

GW_PLUGIN_DEFINE(sink, smallops, plugin)
