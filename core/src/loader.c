/* Plugin loading with libltdl. A descriptor comes from code we did not build,
 * so nothing in it is trusted until its sizes and ABI version say how much of
 * it exists: only then is it copied, and only as much as both sides know,
 * into zeroed structs of this host's size. */
#include "loader.h"

#include <dirent.h>
#include <ltdl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

/* Where the fields of ABI 1.0 end: the smallest struct a plugin may hand us. */
#define ABI_1_0_PLUGIN_SIZE     (offsetof(struct gw_plugin, sink) + sizeof(void *))
#define ABI_1_0_SOURCE_OPS_SIZE (offsetof(struct gw_source_ops, close) + sizeof(void (*)(void)))
#define ABI_1_0_SINK_OPS_SIZE   (offsetof(struct gw_sink_ops, close) + sizeof(void (*)(void)))
/* The fields every ABI shares: enough to read the version before anything else.
 */
#define DESCRIPTOR_HEADER_SIZE (offsetof(struct gw_plugin, abi_minor) + sizeof(unsigned))
/* An option table without its terminator would be read until a crash. */
#define OPTION_TABLE_MAX 1024

static pthread_once_t ltdl_once = PTHREAD_ONCE_INIT;
static int ltdl_status;

static void ltdl_init(void)
{
	ltdl_status = lt_dlinit();
}

const char *gw_plugin_kind_name(enum gw_plugin_kind kind)
{
	switch (kind) {
	case GW_PLUGIN_SOURCE: return "source";
	case GW_PLUGIN_SINK: return "sink";
	}
	return "unknown";
}

static bool parse_kind(const char *text, size_t len, enum gw_plugin_kind *kind)
{
	if (len == 6 && strncmp(text, "source", 6) == 0)
		*kind = GW_PLUGIN_SOURCE;
	else if (len == 4 && strncmp(text, "sink", 4) == 0)
		*kind = GW_PLUGIN_SINK;
	else
		return false;
	return true;
}

/* Plugin names end up in file and symbol names: nothing that could leave a
 * directory. */
static bool valid_plugin_name(const char *name)
{
	if (*name == '\0' || *name == '-')
		return false;
	for (const char *p = name; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
			return false;
	}
	return true;
}

/* ---- search path ---- */

static void add_dir(struct gw_loader *l, const char *dir, size_t len)
{
	if (len == 0)
		return;
	for (size_t i = 0; i < l->dir_count; i++) {
		if (strlen(l->dirs[i]) == len && strncmp(l->dirs[i], dir, len) == 0)
			return;
	}
	l->dirs = gw_xrealloc(l->dirs, (l->dir_count + 1) * sizeof(*l->dirs));
	l->dirs[l->dir_count++] = gw_xstrndup(dir, len);
}

static void add_path_list(struct gw_loader *l, const char *list)
{
	while (list != NULL && *list != '\0') {
		const char *colon = strchr(list, ':');
		size_t len = colon != NULL ? (size_t)(colon - list) : strlen(list);
		add_dir(l, list, len);
		list = colon != NULL ? colon + 1 : NULL;
	}
}

void gw_loader_init(struct gw_loader *l, const char *const *cli_dirs, size_t cli_count,
                    const char *const *profile_dirs, size_t profile_count)
{
	*l = (struct gw_loader){0};
	for (size_t i = 0; i < cli_count; i++)
		add_dir(l, cli_dirs[i], strlen(cli_dirs[i]));
	for (size_t i = 0; i < profile_count; i++)
		add_dir(l, profile_dirs[i], strlen(profile_dirs[i]));
	add_path_list(l, getenv("GODWIT_PLUGIN_PATH"));
	add_dir(l, GODWIT_PLUGIN_BUILD_DIR, strlen(GODWIT_PLUGIN_BUILD_DIR));
	add_dir(l, GODWIT_PLUGIN_INSTALL_DIR, strlen(GODWIT_PLUGIN_INSTALL_DIR));
}

static bool is_regular_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* ---- file names ---- */

struct plugin_id {
	enum gw_plugin_kind kind;
	char *name;
};

/* "dir/gw-source-imap.so" -> source, "imap". */
static bool parse_file_name(const char *path, struct plugin_id *id)
{
	const char *base = strrchr(path, '/');
	base = base != NULL ? base + 1 : path;
	size_t len = strlen(base);
	if (strncmp(base, "gw-", 3) != 0 || len < 3 + 3 || strcmp(base + len - 3, ".so") != 0)
		return false;
	const char *kind = base + 3;
	const char *dash = strchr(kind, '-');
	if (dash == NULL || !parse_kind(kind, (size_t)(dash - kind), &id->kind))
		return false;
	size_t name_len = (size_t)(base + len - 3 - (dash + 1));
	id->name = gw_xstrndup(dash + 1, name_len);
	if (!valid_plugin_name(id->name)) {
		free(id->name);
		id->name = NULL;
		return false;
	}
	return true;
}

static char *entry_symbol(const struct plugin_id *id)
{
	char *symbol = gw_xasprintf("gw_%s_%s_entry", gw_plugin_kind_name(id->kind), id->name);
	for (char *p = symbol; *p != '\0'; p++) {
		if (*p == '-')
			*p = '_';
	}
	return symbol;
}

static struct gw_loaded_plugin *find_loaded(const struct gw_loader *l, enum gw_plugin_kind kind,
                                            const char *name)
{
	for (size_t i = 0; i < l->plugin_count; i++) {
		struct gw_loaded_plugin *p = l->plugins[i];
		if (p->desc.kind == kind && strcmp(p->desc.name, name) == 0)
			return p;
	}
	return NULL;
}

/* ---- descriptor checks: each returns NULL or the reason for refusal ---- */

/* Sizes and version, read from the fields every ABI has, before anything is
 * copied. */
static char *check_header(const struct gw_plugin *d)
{
	if (d->struct_size < DESCRIPTOR_HEADER_SIZE)
		return gw_xasprintf("descriptor struct_size %zu is too small to be a godwit plugin",
		                    d->struct_size);
	if (d->abi_major != GW_ABI_MAJOR || d->abi_minor > GW_ABI_MINOR)
		return gw_xasprintf("built for ABI %u.%u, this godwit has ABI %d.%d", d->abi_major,
		                    d->abi_minor, GW_ABI_MAJOR, GW_ABI_MINOR);
	if (d->struct_size < ABI_1_0_PLUGIN_SIZE)
		return gw_xasprintf("descriptor struct_size %zu is smaller than the %zu bytes of "
		                    "ABI 1.0",
		                    d->struct_size, (size_t)ABI_1_0_PLUGIN_SIZE);
	if (d->struct_size > sizeof(struct gw_plugin))
		return gw_xasprintf("descriptor struct_size %zu is larger than the %zu bytes this "
		                    "godwit knows (plugin built for a newer godwit?)",
		                    d->struct_size, sizeof(struct gw_plugin));
	return NULL;
}

static char *check_ops_size(const char *kind, size_t size, size_t minimum, size_t known)
{
	if (size < minimum)
		return gw_xasprintf("%s operation table struct_size %zu is smaller than the %zu "
		                    "bytes of ABI 1.0",
		                    kind, size, minimum);
	if (size > known)
		return gw_xasprintf("%s operation table struct_size %zu is larger than the %zu "
		                    "bytes this godwit knows (plugin built for a newer godwit?)",
		                    kind, size, known);
	return NULL;
}

static char *missing_op(const char *kind, const char *op)
{
	return gw_xasprintf("required %s operation '%s' is missing", kind, op);
}

static char *copy_source_ops(const struct gw_plugin *d, struct gw_loaded_plugin *p)
{
	if (d->source == NULL)
		return gw_xstrdup("source plugin has no source operation table");
	char *why = check_ops_size("source", d->source->struct_size, ABI_1_0_SOURCE_OPS_SIZE,
	                           sizeof(struct gw_source_ops));
	if (why != NULL)
		return why;
	memcpy(&p->source, d->source, d->source->struct_size);
	const struct gw_source_ops *ops = &p->source;
	if (ops->open == NULL)
		return missing_op("source", "open");
	if (ops->list_folders == NULL)
		return missing_op("source", "list_folders");
	if (ops->select_folder == NULL)
		return missing_op("source", "select_folder");
	if (ops->scan == NULL)
		return missing_op("source", "scan");
	if (ops->fetch == NULL)
		return missing_op("source", "fetch");
	if (ops->close == NULL)
		return missing_op("source", "close");
	if (d->sink != NULL)
		return gw_xstrdup("source plugin also has a sink operation table");
	return NULL;
}

static char *copy_sink_ops(const struct gw_plugin *d, struct gw_loaded_plugin *p)
{
	if (d->sink == NULL)
		return gw_xstrdup("sink plugin has no sink operation table");
	char *why = check_ops_size("sink", d->sink->struct_size, ABI_1_0_SINK_OPS_SIZE,
	                           sizeof(struct gw_sink_ops));
	if (why != NULL)
		return why;
	memcpy(&p->sink, d->sink, d->sink->struct_size);
	const struct gw_sink_ops *ops = &p->sink;
	if (ops->open == NULL)
		return missing_op("sink", "open");
	if (ops->ensure_folder == NULL)
		return missing_op("sink", "ensure_folder");
	if (ops->append == NULL)
		return missing_op("sink", "append");
	if (ops->flush == NULL)
		return missing_op("sink", "flush");
	if (ops->close == NULL)
		return missing_op("sink", "close");
	/* One without the other would leave a flush begun and never waited for. */
	if ((ops->flush_begin == NULL) != (ops->flush_wait == NULL))
		return gw_xstrdup("sink operations 'flush_begin' and 'flush_wait' come together; "
		                  "the plugin has only one of them");
	if (d->source != NULL)
		return gw_xstrdup("sink plugin also has a source operation table");
	return NULL;
}

/* Size of the C field an option of @p type binds into (options.h), 0 if the
 * type is unknown. */
static size_t bound_size(enum gw_opt_type type)
{
	switch (type) {
	case GW_OPT_STRING:
	case GW_OPT_SECRET:
	case GW_OPT_PATH: return sizeof(const char *);
	case GW_OPT_INT: return sizeof(int64_t);
	case GW_OPT_BOOL: return sizeof(bool);
	case GW_OPT_SIZE:
	case GW_OPT_DURATION: return sizeof(uint64_t);
	case GW_OPT_ENUM: return sizeof(int);
	case GW_OPT_LIST: return sizeof(struct gw_str_list);
	}
	return 0;
}

static char *check_option(const struct gw_option *options, size_t i, size_t config_size)
{
	const struct gw_option *o = &options[i];
	if (*o->name == '\0')
		return gw_xasprintf("option %zu has an empty name", i + 1);
	for (size_t k = 0; k < i; k++) {
		if (strcmp(options[k].name, o->name) == 0)
			return gw_xasprintf("option '%s' is declared twice", o->name);
	}
	size_t size = bound_size(o->type);
	if (size == 0)
		return gw_xasprintf("option '%s' has an invalid type %d", o->name, (int)o->type);
	if (o->type == GW_OPT_ENUM && (o->choices == NULL || o->choices[0] == NULL))
		return gw_xasprintf("enum option '%s' has no choices", o->name);
	/* The core writes the value at this offset: it must lie inside the config
	 * struct. */
	if (o->offset > config_size || size > config_size - o->offset)
		return gw_xasprintf("option '%s' at offset %zu does not fit in config_size %zu",
		                    o->name, o->offset, config_size);
	return NULL;
}

static char *check_options(const struct gw_plugin *d)
{
	if (d->options == NULL)
		return NULL;
	for (size_t i = 0; d->options[i].name != NULL; i++) {
		if (i == OPTION_TABLE_MAX)
			return gw_xasprintf("option table has no end marker within %d entries",
			                    OPTION_TABLE_MAX);
		char *why = check_option(d->options, i, d->config_size);
		if (why != NULL)
			return why;
	}
	return NULL;
}

/* Everything after the header check, on the host-sized copy in p->desc. */
static char *check_descriptor(const struct plugin_id *id, struct gw_loaded_plugin *p)
{
	const struct gw_plugin *d = &p->desc;
	if (d->kind != GW_PLUGIN_SOURCE && d->kind != GW_PLUGIN_SINK)
		return gw_xasprintf("descriptor has an invalid kind %d", (int)d->kind);
	if (d->kind != id->kind)
		return gw_xasprintf("is a %s plugin, but the file name says %s",
		                    gw_plugin_kind_name(d->kind), gw_plugin_kind_name(id->kind));
	if (d->name == NULL)
		return gw_xstrdup("descriptor has no name");
	if (strcmp(d->name, id->name) != 0)
		return gw_xasprintf("descriptor name '%s' does not match the file name's '%s'",
		                    d->name, id->name);
	char *why = d->kind == GW_PLUGIN_SOURCE ? copy_source_ops(d, p) : copy_sink_ops(d, p);
	if (why != NULL)
		return why;
	return check_options(d);
}

/* ---- loading ---- */

static const char *ltdl_error(void)
{
	const char *reason = lt_dlerror();
	return reason != NULL ? reason : "unknown error";
}

static lt_dlhandle open_module(const char *path, char **why)
{
	lt_dladvise advise;
	if (lt_dladvise_init(&advise) != 0 || lt_dladvise_ext(&advise) != 0 ||
	    lt_dladvise_local(&advise) != 0) {
		*why = gw_xasprintf("cannot prepare libltdl: %s", ltdl_error());
		return NULL;
	}
	lt_dlhandle handle = lt_dlopenadvise(path, advise);
	lt_dladvise_destroy(&advise);
	if (handle == NULL)
		*why = gw_xasprintf("cannot load: %s", ltdl_error());
	return handle;
}

static const struct gw_plugin *call_entry(lt_dlhandle handle, const struct plugin_id *id,
                                          char **why)
{
	char *symbol = entry_symbol(id);
	void *address = lt_dlsym(handle, symbol);
	const struct gw_plugin *d = NULL;
	if (address == NULL) {
		*why = gw_xasprintf("missing entry symbol %s", symbol);
	} else {
		gw_plugin_entry_fn entry;
		/* POSIX guarantees object and function pointers convert; C does not. */
		memcpy(&entry, &address, sizeof(entry));
		d = entry();
		if (d == NULL)
			*why = gw_xasprintf("entry symbol %s returned no descriptor", symbol);
	}
	free(symbol);
	return d;
}

/* Load and check @p path. On refusal returns NULL with *why the reason (without
 * the path). */
static struct gw_loaded_plugin *load_checked(const char *path, const struct plugin_id *id,
                                             char **why)
{
	lt_dlhandle handle = open_module(path, why);
	if (handle == NULL)
		return NULL;
	const struct gw_plugin *d = call_entry(handle, id, why);
	if (d != NULL)
		*why = check_header(d);
	struct gw_loaded_plugin *p = NULL;
	if (d != NULL && *why == NULL) {
		p = gw_xcalloc(1, sizeof(*p));
		memcpy(&p->desc, d, d->struct_size);
		*why = check_descriptor(id, p);
	}
	if (*why != NULL) {
		free(p);
		lt_dlclose(handle); /* refused: none of its code ever ran beyond the entry */
		return NULL;
	}
	p->path = gw_xstrdup(path);
	p->handle = handle;
	return p;
}

static bool loader_ready(char **error)
{
	pthread_once(&ltdl_once, ltdl_init);
	if (ltdl_status != 0) {
		*error = gw_xasprintf("cannot initialise libltdl: %s", ltdl_error());
		return false;
	}
	return true;
}

static const struct gw_loaded_plugin *load_path(struct gw_loader *l, const char *path,
                                                const struct plugin_id *id, char **error)
{
	struct gw_loaded_plugin *known = find_loaded(l, id->kind, id->name);
	if (known != NULL)
		return known;
	if (!loader_ready(error))
		return NULL;
	char *why = NULL;
	struct gw_loaded_plugin *p = load_checked(path, id, &why);
	if (p == NULL) {
		*error = gw_xasprintf("%s: %s", path, why);
		free(why);
		return NULL;
	}
	l->plugins = gw_xrealloc(l->plugins, (l->plugin_count + 1) * sizeof(*l->plugins));
	l->plugins[l->plugin_count++] = p;
	return p;
}

const struct gw_loaded_plugin *gw_loader_load_file(struct gw_loader *l, const char *path,
                                                   char **error)
{
	*error = NULL;
	struct plugin_id id = {0};
	if (!parse_file_name(path, &id)) {
		*error = gw_xasprintf("%s: file name is not gw-<source|sink>-<name>.so", path);
		return NULL;
	}
	const struct gw_loaded_plugin *p = load_path(l, path, &id, error);
	free(id.name);
	return p;
}

static char *not_found(const struct gw_loader *l, enum gw_plugin_kind kind, const char *name)
{
	struct gw_buf b = {0};
	gw_buf_printf(&b, "%s plugin '%s' not found (looked for gw-%s-%s.so in: ",
	              gw_plugin_kind_name(kind), name, gw_plugin_kind_name(kind), name);
	for (size_t i = 0; i < l->dir_count; i++)
		gw_buf_printf(&b, "%s%s", i > 0 ? ", " : "", l->dirs[i]);
	gw_buf_puts(&b, ")");
	return b.data;
}

const struct gw_loaded_plugin *gw_loader_load(struct gw_loader *l, enum gw_plugin_kind kind,
                                              const char *name, char **error)
{
	*error = NULL;
	if (name == NULL || !valid_plugin_name(name)) {
		*error =
		        gw_xasprintf("invalid plugin name '%s' (letters, digits, '-' and '_' only)",
		                     name != NULL ? name : "");
		return NULL;
	}
	const struct gw_loaded_plugin *known = find_loaded(l, kind, name);
	if (known != NULL)
		return known;
	for (size_t i = 0; i < l->dir_count; i++) {
		char *path =
		        gw_xasprintf("%s/gw-%s-%s.so", l->dirs[i], gw_plugin_kind_name(kind), name);
		if (is_regular_file(path)) {
			struct plugin_id id = {.kind = kind, .name = (char *)name};
			const struct gw_loaded_plugin *p = load_path(l, path, &id, error);
			free(path);
			return p;
		}
		free(path);
	}
	*error = not_found(l, kind, name);
	return NULL;
}

/* ---- discovery ---- */

static int plugin_file_filter(const struct dirent *entry)
{
	size_t len = strlen(entry->d_name);
	return strncmp(entry->d_name, "gw-", 3) == 0 && len > 6 &&
	       strcmp(entry->d_name + len - 3, ".so") == 0;
}

struct seen_set {
	struct plugin_id *ids;
	size_t count;
};

/* True if kind+name was met before; otherwise remembers it. */
static bool seen_before(struct seen_set *seen, const struct plugin_id *id)
{
	for (size_t i = 0; i < seen->count; i++) {
		if (seen->ids[i].kind == id->kind && strcmp(seen->ids[i].name, id->name) == 0)
			return true;
	}
	seen->ids = gw_xrealloc(seen->ids, (seen->count + 1) * sizeof(*seen->ids));
	seen->ids[seen->count++] = (struct plugin_id){id->kind, gw_xstrdup(id->name)};
	return false;
}

struct discovery {
	struct gw_loader *loader;
	void (*cb)(const struct gw_loaded_plugin *p, void *arg);
	void (*on_error)(const char *message, void *arg);
	void *arg;
	struct seen_set seen;
};

static void report(struct discovery *d, const char *message)
{
	if (d->on_error != NULL)
		d->on_error(message, d->arg);
}

static void discover_file(struct discovery *d, const char *path)
{
	if (!is_regular_file(path))
		return;
	struct plugin_id id = {0};
	if (!parse_file_name(path, &id)) {
		char *message =
		        gw_xasprintf("%s: file name is not gw-<source|sink>-<name>.so", path);
		report(d, message);
		free(message);
		return;
	}
	if (!seen_before(&d->seen, &id)) {
		char *error = NULL;
		const struct gw_loaded_plugin *p = load_path(d->loader, path, &id, &error);
		if (p != NULL)
			d->cb(p, d->arg);
		else
			report(d, error);
		free(error);
	}
	free(id.name);
}

static void discover_dir(struct discovery *d, const char *dir)
{
	struct dirent **entries = NULL;
	int n = scandir(dir, &entries, plugin_file_filter, alphasort);
	if (n < 0)
		return; /* a missing directory is expected: the search path lists candidates
		         */
	for (int i = 0; i < n; i++) {
		char *path = gw_xasprintf("%s/%s", dir, entries[i]->d_name);
		discover_file(d, path);
		free(path);
		free(entries[i]);
	}
	free(entries);
}

void gw_loader_discover(struct gw_loader *l,
                        void (*cb)(const struct gw_loaded_plugin *p, void *arg),
                        void (*on_error)(const char *message, void *arg), void *arg)
{
	struct discovery d = {.loader = l, .cb = cb, .on_error = on_error, .arg = arg};
	for (size_t i = 0; i < l->dir_count; i++)
		discover_dir(&d, l->dirs[i]);
	for (size_t i = 0; i < d.seen.count; i++)
		free(d.seen.ids[i].name);
	free(d.seen.ids);
}

void gw_loader_free(struct gw_loader *l)
{
	for (size_t i = 0; i < l->plugin_count; i++) {
		struct gw_loaded_plugin *p = l->plugins[i];
		lt_dlclose((lt_dlhandle)p->handle);
		free(p->path);
		free(p);
	}
	free(l->plugins);
	for (size_t i = 0; i < l->dir_count; i++)
		free(l->dirs[i]);
	free(l->dirs);
	*l = (struct gw_loader){0};
}
