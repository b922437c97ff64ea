/* A source without the required scan operation. */
#include "test_plugin_ops.h"

static const struct gw_source_ops ops = {
        .struct_size = sizeof(struct gw_source_ops),
        .open = test_open,
        .list_folders = test_list_folders,
        .select_folder = test_select_folder,
        .fetch = test_fetch,
        .close = test_close,
};

static const struct gw_plugin plugin = {
        GW_PLUGIN_HEADER,
        .kind = GW_PLUGIN_SOURCE,
        .name = "noscan",
        .source = &ops,
};

GW_PLUGIN_DEFINE(source, noscan, plugin)
