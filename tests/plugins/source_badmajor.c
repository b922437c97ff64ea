/* Built for a future ABI major: must be refused before anything is copied. */
#include "test_plugin_ops.h"

static const struct gw_source_ops ops = {TEST_SOURCE_OPS};

static const struct gw_plugin plugin = {
        .struct_size = sizeof(struct gw_plugin),
        .abi_major = 2,
        .abi_minor = 0,
        .kind = GW_PLUGIN_SOURCE,
        .name = "badmajor",
        .source = &ops,
};

GW_PLUGIN_DEFINE(source, badmajor, plugin)
