/**
 * @file godwit/plugin.h
 * @brief The plugin descriptor and its entry symbol.
 *
 * A plugin is a shared object named `gw-<kind>-<name>.so` that exports one
 * function, `gw_<kind>_<name>_entry` (dashes in the name become
 * underscores), returning a pointer to a static struct gw_plugin. Define it
 * with GW_PLUGIN_DEFINE(). The loader checks @c struct_size, the ABI
 * version and the operation table sizes before it copies anything.
 *
 * ABI rules: the major changes when an existing field changes meaning or
 * place; the minor grows when fields are added at the end of a struct. A
 * host accepts plugins with the same major and a minor not above its own.
 */
#ifndef GODWIT_PLUGIN_H
#define GODWIT_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include <godwit/options.h>
#include <godwit/sink.h>
#include <godwit/source.h>

#ifdef __cplusplus
extern "C" {
#endif

/** ABI major of these headers. */
#define GW_ABI_MAJOR 1
/** ABI minor of these headers. */
#define GW_ABI_MINOR 5

/** Plugin kinds. */
enum gw_plugin_kind {
	GW_PLUGIN_SOURCE = 1,
	GW_PLUGIN_SINK = 2,
};

/** Capability bits a plugin may declare. */
enum gw_plugin_caps {
	GW_CAP_STABLE_IDS = 1u << 0,   /**< Source: scan fills gw_message_meta::stable_id. */
	GW_CAP_KEYWORDS = 1u << 1,     /**< Source reports / sink keeps keywords. */
	GW_CAP_INTERNALDATE = 1u << 2, /**< Source reports / sink keeps the internal date. */
	GW_CAP_LOOKUP = 1u << 3,       /**< Sink implements lookup (exactly-once after a crash). */
	/** Several sessions of one mailbox may be open at once, each on its own
	 * thread and its own folders (see source.h and sink.h). The core copies a
	 * mailbox on several connections only if its source and its sink both
	 * declare this. */
	GW_CAP_PARALLEL_SESSIONS = 1u << 4,
};

/** The plugin descriptor. */
struct gw_plugin {
	size_t struct_size;       /**< sizeof(struct gw_plugin) as the plugin was built. */
	unsigned abi_major;       /**< GW_ABI_MAJOR as the plugin was built. */
	unsigned abi_minor;       /**< GW_ABI_MINOR as the plugin was built. */
	enum gw_plugin_kind kind; /**< Source or sink. */
	const char *name;         /**< Equal to <name> in the file name, e.g. "imap". */
	const char *version;      /**< The plugin's own version, e.g. "1.2.0". */
	const char *description;  /**< One line. */
	const char *license;      /**< SPDX identifier. */
	uint64_t capabilities;    /**< enum gw_plugin_caps bits. */
	const struct gw_option
	        *options;   /**< Option table ending with GW_OPTION_END; may be NULL. */
	size_t config_size; /**< Size of the struct options bind into (zeroed before binding). */
	const struct gw_source_ops *source; /**< Exactly one of source / sink, matching @c kind. */
	const struct gw_sink_ops *sink;
};

/** Initialiser for the fields every descriptor starts with. */
#define GW_PLUGIN_HEADER                                                                           \
	.struct_size = sizeof(struct gw_plugin), .abi_major = GW_ABI_MAJOR,                        \
	.abi_minor = GW_ABI_MINOR

/** Type of the entry function the loader looks up. */
typedef const struct gw_plugin *(*gw_plugin_entry_fn)(void);

#if defined(__GNUC__) || defined(__clang__)
#define GW_EXPORT __attribute__((visibility("default")))
#else
#define GW_EXPORT
#endif

/**
 * Define the entry symbol of a plugin: GW_PLUGIN_DEFINE(source, imap, descriptor)
 * exports `gw_source_imap_entry`. Use underscores where the file name has dashes.
 */
#define GW_PLUGIN_DEFINE(kind, cname, descriptor)                                                  \
	GW_EXPORT const struct gw_plugin *gw_##kind##_##cname##_entry(void);                       \
	GW_EXPORT const struct gw_plugin *gw_##kind##_##cname##_entry(void)                        \
	{                                                                                          \
		return &(descriptor);                                                              \
	}

#ifdef __cplusplus
}
#endif
#endif
