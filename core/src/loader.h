/* Finding and loading plugins with libltdl, once, on the main thread, before
 * any worker starts; never unloaded while running. Every refusal is one line
 * naming the file and the reason. */
#ifndef GW_LOADER_H
#define GW_LOADER_H

#include <stdbool.h>
#include <stddef.h>

#include <godwit/plugin.h>

#include "diag.h"

struct gw_loaded_plugin {
	struct gw_plugin desc;       /* copied after the checks; missing tail fields zeroed */
	struct gw_source_ops source; /* copied, zero-filled past the plugin's struct_size */
	struct gw_sink_ops sink;
	char *path;   /* file it came from */
	void *handle; /* lt_dlhandle */
};

struct gw_loader {
	char **dirs; /* search order, see gw_loader_init */
	size_t dir_count;
	struct gw_loaded_plugin **plugins;
	size_t plugin_count;
};

/* Search order: @p cli_dirs (--plugin-path), @p profile_dirs (profile plugin_path),
 * $GODWIT_PLUGIN_PATH (colon-separated), the build tree's plugin dir, the install dir.
 * Missing directories are kept (listed in "not found" messages) but skipped. */
void gw_loader_init(struct gw_loader *l, const char *const *cli_dirs, size_t cli_count,
                    const char *const *profile_dirs, size_t profile_count);
/* Load gw-<kind>-<name>.so from the first directory that has it. On failure
 * returns NULL and *error (caller frees) is one line: file + reason, or for a
 * missing plugin the directories searched. Loading the same plugin twice
 * returns the first. */
const struct gw_loaded_plugin *gw_loader_load(struct gw_loader *l, enum gw_plugin_kind kind,
                                              const char *name, char **error);
/* Load a plugin from an explicit file (tests, and `plugins` listing). */
const struct gw_loaded_plugin *gw_loader_load_file(struct gw_loader *l, const char *path,
                                                   char **error);
/* Call @p cb for every gw-*.so found in the search path (first one of each
 * name wins), loaded and checked; failures go to @p on_error (may be NULL). */
void gw_loader_discover(struct gw_loader *l,
                        void (*cb)(const struct gw_loaded_plugin *p, void *arg),
                        void (*on_error)(const char *message, void *arg), void *arg);
void gw_loader_free(struct gw_loader *l);

const char *gw_plugin_kind_name(enum gw_plugin_kind kind);

#endif
