/* Destination folders: where a source path lands (README.md, "Folder
 * names"), special-use roles, case variants, CREATE and SUBSCRIBE. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sink_imap.h"

/* Names that stand for a role on servers without SPECIAL-USE, in order of preference. */
static const struct {
	enum gw_folder_role role;
	const char *names[5];
} common_names[] = {
        {GW_ROLE_SENT, {"Sent", "Sent Items", "Sent Messages", "Sent Mail", NULL}},
        {GW_ROLE_TRASH, {"Trash", "Deleted Items", "Deleted Messages", NULL}},
        {GW_ROLE_JUNK, {"Junk", "Junk Email", "Junk E-mail", "Spam", NULL}},
        {GW_ROLE_DRAFTS, {"Drafts", NULL}},
        {GW_ROLE_ARCHIVE, {"Archive", "Archives", NULL}},
};

#define COMMON_COUNT (sizeof(common_names) / sizeof(common_names[0]))

/* ---- text helpers (plugins do not link the core's) ---- */

struct text {
	char *data;
	size_t len, cap;
	bool oom;
};

static void text_add(struct text *t, const char *s, size_t n)
{
	if (t->oom)
		return;
	if (t->len + n + 1 > t->cap) {
		size_t cap = (t->len + n + 1) * 2;
		char *grown = realloc(t->data, cap);
		if (!grown) {
			t->oom = true;
			return;
		}
		t->data = grown;
		t->cap = cap;
	}
	memcpy(t->data + t->len, s, n);
	t->len += n;
	t->data[t->len] = '\0';
}

static void text_puts(struct text *t, const char *s)
{
	text_add(t, s, strlen(s));
}

static char *text_take(struct text *t)
{
	if (t->oom) {
		free(t->data);
		return NULL;
	}
	if (!t->data)
		return strdup("");
	return t->data;
}

/* ---- the mapping rules ---- */

/* The fullwidth form (U+FF01..U+FF5E) of printable ASCII @p c, as UTF-8. */
static void add_fullwidth(struct text *t, char c)
{
	unsigned cp = 0xFEE0u + (unsigned char)c;
	char utf8[3] = {(char)(0xE0 | (cp >> 12)), (char)(0x80 | ((cp >> 6) & 0x3F)),
	                (char)(0x80 | (cp & 0x3F))};
	text_add(t, utf8, 3);
}

static bool printable_ascii(char c)
{
	return c >= 0x21 && c <= 0x7E;
}

/* One component: the destination delimiter inside it becomes its fullwidth form. */
static void add_component(struct text *t, const char *component, char delimiter)
{
	for (const char *p = component; *p; p++) {
		if (*p == delimiter)
			add_fullwidth(t, *p);
		else
			text_add(t, p, 1);
	}
}

static bool is_inbox(const char *name)
{
	return strcasecmp(name, "INBOX") == 0;
}

/* "INBOX" followed by the delimiter: a Courier-style personal namespace. */
static bool prefix_is_inbox(const char *prefix, char delimiter)
{
	return strlen(prefix) == 6 && strncasecmp(prefix, "INBOX", 5) == 0 &&
	       prefix[5] == delimiter;
}

char *imap_sink_map_path(const char *prefix, char delimiter, const struct gw_folder_path *path)
{
	if (path->role == GW_ROLE_INBOX || (path->count == 1 && is_inbox(path->components[0])))
		return strdup("INBOX");
	bool under_inbox = path->count > 1 && is_inbox(path->components[0]);
	struct text t = {0};
	text_add(&t, "", 0);
	/* A source path that already starts with INBOX is not put under INBOX twice. */
	if (!(under_inbox && prefix_is_inbox(prefix, delimiter)))
		text_puts(&t, prefix);
	for (size_t i = 0; i < path->count; i++) {
		if (i > 0 && printable_ascii(delimiter))
			text_add(&t, &delimiter, 1);
		else if (i > 0)
			add_fullwidth(&t,
			              '/'); /* a flat namespace: components joined with U+FF0F */
		if (i == 0 && under_inbox)
			text_puts(&t, "INBOX");
		else
			add_component(&t, path->components[i], delimiter);
	}
	return text_take(&t);
}

/* ---- the destination's folders ---- */

static gw_status on_dest_folder(void *arg, const struct gw_folder_info *info)
{
	struct imap_session *s = arg;
	struct dest_folder *grown = realloc(s->dest, (s->dest_count + 1) * sizeof(*s->dest));
	if (!grown)
		return s->host->fail(s->ctx, GW_ERR_SESSION, "out of memory");
	s->dest = grown;
	struct dest_folder *d = &s->dest[s->dest_count];
	d->name = strdup(info->name);
	if (!d->name)
		return s->host->fail(s->ctx, GW_ERR_SESSION, "out of memory");
	d->role = info->role;
	d->selectable = info->selectable;
	s->dest_count++;
	return GW_OK;
}

gw_status imap_sink_read_folders(struct imap_session *s)
{
	return s->api->list(s->imap, on_dest_folder, s);
}

static struct dest_folder *find_dest(struct imap_session *s, const char *name, bool any_case)
{
	for (size_t i = 0; i < s->dest_count; i++) {
		struct dest_folder *d = &s->dest[i];
		if (strcmp(d->name, name) == 0 || (is_inbox(d->name) && is_inbox(name)))
			return d;
	}
	for (size_t i = 0; any_case && i < s->dest_count; i++)
		if (strcasecmp(s->dest[i].name, name) == 0 && s->dest[i].selectable)
			return &s->dest[i];
	return NULL;
}

static size_t common_index(enum gw_folder_role role)
{
	for (size_t i = 0; i < COMMON_COUNT; i++)
		if (common_names[i].role == role)
			return i;
	return COMMON_COUNT;
}

/* A top-level source folder without a role but with a common name takes that role. */
static enum gw_folder_role role_of(const struct gw_folder_path *path)
{
	if (path->role != GW_ROLE_NONE || path->count != 1)
		return path->role;
	for (size_t i = 0; i < COMMON_COUNT; i++)
		for (const char *const *n = common_names[i].names; *n; n++)
			if (strcasecmp(*n, path->components[0]) == 0)
				return common_names[i].role;
	return GW_ROLE_NONE;
}

/* The destination's folder for a role: SPECIAL-USE first, then common names. */
static const char *role_folder(struct imap_session *s, enum gw_folder_role role)
{
	size_t c = common_index(role);
	if (c == COMMON_COUNT)
		return NULL;
	for (size_t i = 0; i < s->dest_count; i++)
		if (s->dest[i].role == role && s->dest[i].selectable)
			return s->dest[i].name;
	for (const char *const *n = common_names[c].names; *n; n++) {
		char *name = malloc(strlen(s->prefix) + strlen(*n) + 1);
		if (!name)
			return NULL;
		strcpy(name, s->prefix);
		strcat(name, *n);
		struct dest_folder *d = find_dest(s, name, true);
		free(name);
		if (d && d->selectable)
			return d->name;
	}
	return NULL;
}

static gw_status remember_created(struct imap_session *s, const char *name)
{
	struct dest_folder *d = find_dest(s, name, false);
	if (d) {
		d->selectable = true;
		return GW_OK;
	}
	struct gw_folder_info info = {.struct_size = sizeof(info),
	                              .name = name,
	                              .role = GW_ROLE_NONE,
	                              .selectable = true};
	return on_dest_folder(s, &info);
}

/* @p name exists on the destination and can hold mail. */
static bool holds_mail(struct imap_session *s, const char *name)
{
	const struct dest_folder *d = find_dest(s, name, false);
	return d && d->selectable;
}

/* CREATE (and SUBSCRIBE) @p name unless it exists and can hold mail. */
static gw_status make_folder(struct imap_session *s, const char *name)
{
	if (holds_mail(s, name))
		return GW_OK;
	if (!s->sink->cfg->create_folders)
		return s->host->fail(s->ctx, GW_ERR_FOLDER,
		                     "folder \"%s\" does not exist on the destination and "
		                     "create_folders is false",
		                     name);
	bool created = false;
	gw_status st = s->api->create(s->imap, name, &created);
	if (st == GW_OK && created && s->sink->cfg->subscribe)
		st = s->api->subscribe(s->imap, name);
	if (st == GW_OK)
		st = remember_created(s, name);
	return st;
}

/* The handle of a destination folder; two source folders merged into one share it. */
static struct sink_folder *handle_of(struct imap_session *s, const char *name, uint32_t validity)
{
	for (size_t i = 0; i < s->folder_count; i++)
		if (strcmp(s->folders[i]->name, name) == 0)
			return s->folders[i];
	struct sink_folder **grown =
	        realloc(s->folders, (s->folder_count + 1) * sizeof(*s->folders));
	struct sink_folder *f = calloc(1, sizeof(*f));
	if (grown)
		s->folders = grown;
	if (!grown || !f || !(f->name = strdup(name))) {
		free(f);
		return NULL;
	}
	f->uidvalidity = validity;
	s->folders[s->folder_count++] = f;
	return f;
}

/* Where @p path lands, before creation: role folder, or the mapped name (maybe
 * a case variant, said once: by ensure_folder, @p warn). */
static char *target_name(struct imap_session *s, const struct gw_folder_path *path, bool warn)
{
	const char *by_role = role_folder(s, role_of(path));
	if (by_role)
		return strdup(by_role);
	char *name = imap_sink_map_path(s->prefix, s->delimiter, path);
	if (!name || !s->sink->cfg->merge_case_variants)
		return name;
	struct dest_folder *d = find_dest(s, name, true);
	if (d && strcmp(d->name, name) != 0 && !(is_inbox(d->name) && is_inbox(name))) {
		if (warn)
			s->host->log(s->ctx, GW_LOG_WARN,
			             "folder \"%s\" is merged into the existing \"%s\": the names "
			             "differ only in case (merge_case_variants)",
			             name, d->name);
		free(name);
		name = strdup(d->name);
	}
	return name;
}

static const struct prepared_folder *find_prepared(const struct imap_session *s, const char *name)
{
	for (size_t i = 0; i < s->prepared_count; i++)
		if (strcmp(s->prepared[i].name, name) == 0)
			return &s->prepared[i];
	return NULL;
}

/* Take over a request's outcome (and its name). */
static gw_status keep_prepared(struct imap_session *s, struct gw_imap_folder_prep *r)
{
	struct prepared_folder *grown =
	        realloc(s->prepared, (s->prepared_count + 1) * sizeof(*s->prepared));
	char *error = r->status != GW_OK ? strdup(r->error) : NULL;
	if (grown)
		s->prepared = grown;
	if (!grown || (r->status != GW_OK && !error)) {
		free(error);
		return s->host->fail(s->ctx, GW_ERR_SESSION, "out of memory");
	}
	s->prepared[s->prepared_count++] = (struct prepared_folder){
	        .name = (char *)r->folder,
	        .status = r->status,
	        .error = error,
	        .uidvalidity = r->info.uidvalidity,
	        .append_limit = r->info.append_limit,
	};
	r->folder = NULL;
	return r->status == GW_OK ? remember_created(s, s->prepared[s->prepared_count - 1].name)
	                          : GW_OK;
}

/* The request for @p path into *@p r; none (r->folder left NULL) where it
 * repeats one, or where ensure_folder reports the folder's problem itself. */
static gw_status prep_request(struct imap_session *s, const struct gw_folder_path *path,
                              const struct gw_imap_folder_prep *taken, size_t n,
                              struct gw_imap_folder_prep *r)
{
	char *name = path && path->count > 0 ? target_name(s, path, false) : NULL;
	if (path && path->count > 0 && !name)
		return s->host->fail(s->ctx, GW_ERR_SESSION, "out of memory");
	bool skip = !name || strlen(name) >= GW_SINK_ID_MAX || find_prepared(s, name);
	for (size_t i = 0; i < n && !skip; i++)
		skip = strcmp(taken[i].folder, name) == 0; /* two source folders merged */
	bool exists = !skip && holds_mail(s, name);
	if (skip || (!exists && !s->sink->cfg->create_folders)) {
		free(name);
		return GW_OK;
	}
	*r = (struct gw_imap_folder_prep){.struct_size = sizeof(*r),
	                                  .folder = name,
	                                  .create = !exists,
	                                  .subscribe = s->sink->cfg->subscribe,
	                                  .info = {.struct_size = sizeof(r->info)}};
	return GW_OK;
}

/* The core names the folders it will ensure: CREATE, SUBSCRIBE and SELECT go
 * out for all of them at once (gw_imap_api.prepare_folders), and
 * ensure_folder then answers from what came back. */
gw_status imap_sink_prepare_folders(void *session, const struct gw_folder_path *const *paths,
                                    size_t count)
{
	struct imap_session *s = session;
	if (!GW_IMAP_HAS(s->api, prepare_folders) || count == 0)
		return GW_OK;
	struct gw_imap_folder_prep *requests = calloc(count, sizeof(*requests));
	if (!requests)
		return s->host->fail(s->ctx, GW_ERR_SESSION, "out of memory");
	size_t n = 0;
	gw_status st = GW_OK;
	for (size_t i = 0; i < count && st == GW_OK; i++) {
		st = prep_request(s, paths[i], requests, n, &requests[n]);
		if (requests[n].folder)
			n++;
	}
	if (st == GW_OK && n > 0)
		st = s->api->prepare_folders(s->imap, requests, n);
	s->selected = NULL; /* lookup selects what it needs */
	for (size_t i = 0; i < n; i++) {
		if (st == GW_OK)
			st = keep_prepared(s, &requests[i]);
		free((char *)requests[i].folder);
	}
	free(requests);
	return st;
}

gw_status imap_sink_ensure_folder(void *session, const struct gw_folder_path *path, void **folder,
                                  char folder_id[GW_SINK_ID_MAX])
{
	struct imap_session *s = session;
	*folder = NULL;
	folder_id[0] = '\0';
	if (!path || path->count == 0)
		return s->host->fail(s->ctx, GW_ERR_FOLDER, "empty folder path");
	char *name = target_name(s, path, true);
	if (!name)
		return s->host->fail(s->ctx, GW_ERR_SESSION, "out of memory");
	gw_status st = GW_OK;
	if (strlen(name) >= GW_SINK_ID_MAX)
		st = s->host->fail(s->ctx, GW_ERR_FOLDER,
		                   "destination folder name \"%s\" is longer than %d bytes", name,
		                   GW_SINK_ID_MAX - 1);
	const struct prepared_folder *prepared = st == GW_OK ? find_prepared(s, name) : NULL;
	struct gw_imap_mailbox_info info = {.struct_size = sizeof(info)};
	if (prepared && prepared->status != GW_OK) {
		st = s->host->fail(s->ctx, prepared->status, "%s", prepared->error);
	} else if (prepared) {
		info.uidvalidity = prepared->uidvalidity;
		info.append_limit = prepared->append_limit;
	} else if (st == GW_OK) {
		st = make_folder(s, name);
		if (st == GW_OK)
			st = s->api->mailbox_info(s->imap, name, &info);
	}
	if (st == GW_OK) {
		s->selected = NULL; /* mailbox_info selected it: lookup selects again */
		struct sink_folder *f = handle_of(s, name, info.uidvalidity);
		if (!f)
			st = s->host->fail(s->ctx, GW_ERR_SESSION, "out of memory");
		else {
			f->uidvalidity = info.uidvalidity;
			f->append_limit = info.append_limit;
			*folder = f;
			snprintf(folder_id, GW_SINK_ID_MAX, "%s", name);
		}
	}
	free(name);
	return st;
}

uint64_t imap_sink_size_limit(void *session, void *folder, char set_by[GW_SINK_LIMIT_TEXT_MAX])
{
	(void)session;
	const struct sink_folder *f = folder;
	set_by[0] = '\0';
	if (!f || f->append_limit == 0)
		return 0;
	snprintf(set_by, GW_SINK_LIMIT_TEXT_MAX, "destination APPENDLIMIT %" PRIu64,
	         f->append_limit);
	return f->append_limit;
}

void imap_sink_folders_free(struct imap_session *s)
{
	for (size_t i = 0; i < s->prepared_count; i++) {
		free(s->prepared[i].name);
		free(s->prepared[i].error);
	}
	free(s->prepared);
	s->prepared = NULL;
	s->prepared_count = 0;
	for (size_t i = 0; i < s->dest_count; i++)
		free(s->dest[i].name);
	free(s->dest);
	s->dest = NULL;
	s->dest_count = 0;
	for (size_t i = 0; i < s->folder_count; i++) {
		free(s->folders[i]->name);
		free(s->folders[i]->claimed);
		free(s->folders[i]);
	}
	free(s->folders);
	s->folders = NULL;
	s->folder_count = 0;
}
