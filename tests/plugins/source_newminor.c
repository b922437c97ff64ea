/* Built for a newer ABI minor than this host has: refused. */
#include "test_plugin_ops.h"

static const struct gw_source_ops ops = {TEST_SOURCE_OPS};

static const struct gw_plugin plugin = {
        .struct_size = sizeof(struct gw_plugin),
        .abi_major = GW_ABI_MAJOR,
        .abi_minor = GW_ABI_MINOR + 1,
        .kind = GW_PLUGIN_SOURCE,
        .name = "newminor",
        .source = &ops,
};

GW_PLUGIN_DEFINE(source, newminor, plugin)
