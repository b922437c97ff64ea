/* Claims a descriptor larger than this host knows, with the current ABI
 * version: the host must refuse instead of copying the unknown tail. The
 * tail really exists, as it would in a plugin built against newer headers. */
#include "test_plugin_ops.h"

static const struct gw_source_ops ops = {TEST_SOURCE_OPS};

struct future_plugin {
	struct gw_plugin base;
	char added_later[64];
};

static const struct future_plugin plugin = {
        .base =
                {
                        .struct_size = sizeof(struct future_plugin),
                        .abi_major = GW_ABI_MAJOR,
                        .abi_minor = GW_ABI_MINOR,
                        .kind = GW_PLUGIN_SOURCE,
                        .name = "toolarge",
                        .source = &ops,
                },
};

GW_PLUGIN_DEFINE(source, toolarge, plugin.base)
