/* NAMESPACE and LIST: every folder of the mailbox with its role, names
 * decoded from modified UTF-7 to UTF-8. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap_internal.h"
#include "imap_utf7.h"
#include "log.h"
#include "util.h"

static const struct {
	const char *attribute;
	enum gw_folder_role role;
} role_attributes[] = {
        {"\\Sent", GW_ROLE_SENT},
        {"\\Drafts", GW_ROLE_DRAFTS},
        {"\\Trash", GW_ROLE_TRASH},
        {"\\Junk", GW_ROLE_JUNK},
        {"\\Archive", GW_ROLE_ARCHIVE},
        {"\\All", GW_ROLE_ALL},
        {"\\Flagged", GW_ROLE_FLAGGED},
        {"\\Important", GW_ROLE_IMPORTANT},
        /* XLIST names some servers still send in LIST */
        {"\\Spam", GW_ROLE_JUNK},
        {"\\AllMail", GW_ROLE_ALL},
        {"\\Starred", GW_ROLE_FLAGGED},
        {"\\Inbox", GW_ROLE_INBOX},
};

/* ---- NAMESPACE: remember the prefixes that are not this user's ---- */

static void add_foreign_prefixes(struct gw_imap *imap, const struct imap_value *group)
{
	if (!group || group->type != GW_IV_LIST)
		return;
	for (size_t i = 0; i < group->count; i++) {
		const struct imap_value *prefix = imap_list_item(&group->items[i], 0);
		if (!imap_value_is_string(prefix) || prefix->len == 0)
			continue;
		imap->foreign_prefixes = gw_xrealloc(imap->foreign_prefixes,
		                                     (imap->foreign_count + 1) * sizeof(char *));
		imap->foreign_prefixes[imap->foreign_count++] = gw_xstrdup(prefix->str);
	}
}

/* The first personal namespace: where this user's folders live (RFC 2342). */
static void note_personal(struct gw_imap *imap, const struct imap_value *group)
{
	const struct imap_value *first = imap_list_item(group, 0);
	const struct imap_value *prefix = imap_list_item(first, 0);
	const struct imap_value *delim = imap_list_item(first, 1);
	if (!imap_value_is_string(prefix))
		return;
	const char *why = NULL;
	char *utf8 = prefix->len == 0 ? gw_xstrdup("")
	                              : gw_imap_utf7_decode(prefix->str, prefix->len, &why);
	if (!utf8) {
		gw_log(imap->ctx, GW_LOG_WARN, "ignoring the personal namespace \"%s\": %s",
		       prefix->str, why);
		return;
	}
	/* Unchanged on a re-read: the pointer get_namespace handed out stays valid. */
	if (imap->personal_prefix && strcmp(imap->personal_prefix, utf8) == 0) {
		free(utf8);
	} else {
		free(imap->personal_prefix);
		imap->personal_prefix = utf8;
	}
	imap->personal_delimiter =
	        imap_value_is_string(delim) && delim->len == 1 ? delim->str[0] : 0;
	imap->personal_known = true;
}

static gw_status namespace_untagged(void *arg, struct gw_imap *imap,
                                    const struct imap_response *resp)
{
	(void)arg;
	if (!imap_value_is_atom(imap_list_item(&resp->data, 0), "NAMESPACE"))
		return GW_OK;
	note_personal(imap, imap_list_item(&resp->data, 1));
	add_foreign_prefixes(imap, imap_list_item(&resp->data, 2)); /* other users */
	add_foreign_prefixes(imap, imap_list_item(&resp->data, 3)); /* shared */
	return GW_OK;
}

gw_status imap_read_namespaces(struct gw_imap *imap)
{
	for (size_t i = 0; i < imap->foreign_count; i++)
		free(imap->foreign_prefixes[i]);
	imap->foreign_count = 0;
	if (!imap_has_cap(imap, "NAMESPACE"))
		return GW_OK;
	struct imap_response tagged;
	gw_status st = imap_command(imap, "NAMESPACE", namespace_untagged, NULL, &tagged);
	if (st == GW_OK && tagged.cond != GW_IMAP_OK)
		gw_log(imap->ctx, GW_LOG_DEBUG, "NAMESPACE failed: %s", tagged.text);
	imap_response_free(&tagged);
	return st;
}

static bool is_foreign(const struct gw_imap *imap, const char *wire)
{
	for (size_t i = 0; i < imap->foreign_count; i++) {
		const char *prefix = imap->foreign_prefixes[i];
		size_t n = strlen(prefix);
		if (strncmp(wire, prefix, n) == 0)
			return true;
		/* the namespace root itself, listed without its trailing delimiter */
		if (n > 1 && strlen(wire) == n - 1 && strncmp(wire, prefix, n - 1) == 0)
			return true;
	}
	return false;
}

/* ---- folder names ---- */

static void add_alias(struct gw_imap *imap, const char *utf8, const char *wire)
{
	for (size_t i = 0; i < imap->alias_count; i++)
		if (strcmp(imap->aliases[i].utf8, utf8) == 0)
			return;
	imap->aliases =
	        gw_xrealloc(imap->aliases, (imap->alias_count + 1) * sizeof(*imap->aliases));
	imap->aliases[imap->alias_count].utf8 = gw_xstrdup(utf8);
	imap->aliases[imap->alias_count].wire = wire ? gw_xstrdup(wire) : NULL;
	imap->alias_count++;
}

/* CR, LF and NUL are the bytes an IMAP quoted string cannot hold (RFC 3501
 * TEXT-CHAR): a line break would end the command there and let the rest of a
 * server-supplied folder name run as a command of its own. */
static bool has_unquotable_char(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
			return true;
	return false;
}

char *imap_wire_name(struct gw_imap *imap, const char *utf8, const char **error)
{
	for (size_t i = 0; i < imap->alias_count; i++) {
		if (strcmp(imap->aliases[i].utf8, utf8) != 0)
			continue;
		if (!imap->aliases[i].wire) {
			*error = "the server listed this name with CR, LF or NUL, which cannot be "
			         "sent back in an IMAP command";
			return NULL;
		}
		return gw_xstrdup(imap->aliases[i].wire);
	}
	if (strcasecmp(utf8, "INBOX") == 0)
		return gw_xstrdup("INBOX");
	return gw_imap_utf7_encode(utf8, error);
}

/* UTF-8 name of a listed folder; NULL if it cannot be represented. */
/* The listed name with control characters written as \xNN, for a folder that
 * can be reported but never selected. */
static char *escaped_name(const struct imap_value *name)
{
	struct gw_buf b = {0};
	for (size_t i = 0; i < name->len; i++) {
		unsigned char c = (unsigned char)name->str[i];
		if (c == '\r' || c == '\n' || c == '\0')
			gw_buf_printf(&b, "\\x%02x", c);
		else
			gw_buf_append(&b, &name->str[i], 1);
	}
	return b.data ? b.data : gw_xstrdup("");
}

static char *decode_name(struct gw_imap *imap, const struct imap_value *name)
{
	if (has_unquotable_char(name->str, name->len)) {
		/* Reported to the core, which records the folder as failed when it
		 * cannot be selected: never dropped silently, never sent raw. */
		char *shown = escaped_name(name);
		gw_log(imap->ctx, GW_LOG_WARN,
		       "folder \"%s\": the name contains CR, LF or NUL; it cannot be selected",
		       shown);
		add_alias(imap, shown, NULL);
		return shown;
	}
	if (strcasecmp(name->str, "INBOX") == 0)
		return gw_xstrdup("INBOX");
	const char *why = NULL;
	char *utf8 = gw_imap_utf7_decode(name->str, name->len, &why);
	if (utf8)
		return utf8;
	/* Some servers send raw UTF-8 names: keep them, and select them as listed. */
	if (gw_utf8_valid(name->str, name->len)) {
		gw_log(imap->ctx, GW_LOG_DEBUG,
		       "folder name \"%s\" is not modified UTF-7 (%s); using it as UTF-8",
		       name->str, why);
		add_alias(imap, name->str, name->str);
		return gw_xstrdup(name->str);
	}
	gw_log(imap->ctx, GW_LOG_WARN,
	       "skipping a folder whose name is neither modified UTF-7 "
	       "nor UTF-8 (%s)",
	       why);
	return NULL;
}

/* ---- LIST ---- */

struct list_state {
	gw_folder_cb cb;
	void *arg;
};

static void apply_attributes(const struct imap_value *attrs, struct gw_folder_info *info)
{
	for (size_t i = 0; attrs && i < attrs->count; i++) {
		const struct imap_value *a = &attrs->items[i];
		if (imap_value_is_atom(a, "\\Noselect") || imap_value_is_atom(a, "\\NonExistent"))
			info->selectable = false;
		for (size_t r = 0; r < sizeof(role_attributes) / sizeof(role_attributes[0]); r++)
			if (imap_value_is_atom(a, role_attributes[r].attribute) &&
			    info->role == GW_ROLE_NONE)
				info->role = role_attributes[r].role;
	}
}

static gw_status list_untagged(void *arg, struct gw_imap *imap, const struct imap_response *resp)
{
	struct list_state *state = arg;
	const struct imap_value *data = &resp->data;
	if (!imap_value_is_atom(imap_list_item(data, 0), "LIST"))
		return GW_OK;
	const struct imap_value *attrs = imap_list_item(data, 1);
	const struct imap_value *delim = imap_list_item(data, 2);
	const struct imap_value *name = imap_list_item(data, 3);
	if (!attrs || attrs->type != GW_IV_LIST || !delim || !imap_value_is_string(name)) {
		gw_log(imap->ctx, GW_LOG_WARN, "ignoring a malformed LIST response from %s",
		       imap->io.host);
		return GW_OK;
	}
	if (is_foreign(imap, name->str)) {
		gw_log(imap->ctx, GW_LOG_DEBUG,
		       "skipping \"%s\": another user's or a shared "
		       "namespace",
		       name->str);
		return GW_OK;
	}
	char *utf8 = decode_name(imap, name);
	if (!utf8)
		return GW_OK;
	struct gw_folder_info info = {
	        .struct_size = sizeof(info),
	        .name = utf8,
	        .delimiter = imap_value_is_string(delim) && delim->len == 1 ? delim->str[0] : 0,
	        .role = strcmp(utf8, "INBOX") == 0 ? GW_ROLE_INBOX : GW_ROLE_NONE,
	        .selectable = true,
	};
	apply_attributes(attrs, &info);
	gw_status st = state->cb(state->arg, &info);
	free(utf8);
	return st;
}

gw_status imap_list(struct gw_imap *imap, gw_folder_cb cb, void *arg)
{
	gw_status st = imap_check_usable(imap);
	if (st != GW_OK)
		return st;
	if (!imap->personal_known) { /* read once per connection: they do not change */
		st = imap_read_namespaces(imap);
		if (st != GW_OK)
			return st;
	}
	const char *cmd = "LIST \"\" \"*\"";
	if (imap_has_cap(imap, "SPECIAL-USE") && imap_has_cap(imap, "LIST-EXTENDED"))
		cmd = "LIST \"\" \"*\" RETURN (SPECIAL-USE)";
	struct list_state state = {.cb = cb, .arg = arg};
	struct imap_response tagged;
	st = imap_command(imap, cmd, list_untagged, &state, &tagged);
	if (st == GW_OK && tagged.cond != GW_IMAP_OK) {
		char *what = gw_xasprintf("cannot list the folders on %s", imap->io.host);
		st = imap_fail_response(imap, &tagged, GW_ERR_SESSION, what);
		free(what);
	}
	imap_response_free(&tagged);
	return st;
}
