/* The connection half both IMAP plugins share: the options that say where
 * and how to log in, their checks, and connect + log in for one mailbox.
 * Compiled into each plugin (a static library), never into libgodwit:
 * like the plugins it sees only the SDK headers and the host table. */
#ifndef GW_PLUGIN_IMAP_ENDPOINT_H
#define GW_PLUGIN_IMAP_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <godwit/godwit.h>

/* The shared config fields; a plugin's config struct embeds it. */
struct gw_imap_endpoint {
	const char *host;
	int64_t port;
	int tls; /* enum gw_imap_tls */
	const char *ca_file;
	bool tls_verify;
	int auth; /* enum gw_imap_auth */
	const char *user;
	const char *password;
	const char *admin_user;
	const char *admin_password;
	const char *oauth_token;
	uint64_t timeout_ms;
	int64_t pipeline_depth;
};

/* Indexes match enum gw_imap_tls and enum gw_imap_auth. */
extern const char *const gw_imap_endpoint_tls_choices[];
extern const char *const gw_imap_endpoint_auth_choices[];

#define GW_IMAP_ENDPOINT_OPT_(config_type, member, field) offsetof(config_type, member.field)

/* The option-table entries of a `struct gw_imap_endpoint` embedded as @p member
 * of @p config_type. The descriptions differ per plugin only where the plugins
 * do: @p host_description; @p user_default and @p secret_default (the CSV columns
 * user and password / oauth_token fall back to, e.g. "the CSV Password column");
 * @p pipeline_description (what is kept in flight). */
/* clang-format off */
#define GW_IMAP_ENDPOINT_OPTIONS(config_type, member, host_description, user_default,              \
                                 secret_default, pipeline_description)                             \
	{.name = "host", .type = GW_OPT_STRING, .flags = GW_OPT_REQUIRED,                          \
	 .offset = GW_IMAP_ENDPOINT_OPT_(config_type, member, host),                               \
	 .description = host_description},                                                         \
	{.name = "port", .type = GW_OPT_INT, .default_value = "0",                                 \
	 .offset = GW_IMAP_ENDPOINT_OPT_(config_type, member, port),                               \
	 .description = "TCP port; 0 means 993 for tls: implicit, else 143"},                      \
	{.name = "tls", .type = GW_OPT_ENUM, .default_value = "implicit",                          \
	 .offset = GW_IMAP_ENDPOINT_OPT_(config_type, member, tls),                                \
	 .choices = gw_imap_endpoint_tls_choices,                                                  \
	 .description = "implicit (TLS from the start), starttls, or none (unencrypted; "          \
	                "must be explicit)"},                                                      \
	{.name = "ca_file", .type = GW_OPT_PATH,                                                   \
	 .offset = GW_IMAP_ENDPOINT_OPT_(config_type, member, ca_file),                            \
	 .description = "PEM file with extra certificate authorities to trust"},                   \
	{.name = "tls_verify", .type = GW_OPT_BOOL, .default_value = "true",                       \
	 .offset = GW_IMAP_ENDPOINT_OPT_(config_type, member, tls_verify),                         \
	 .description = "Verify the server certificate and host name; false is insecure"},         \
	{.name = "auth", .type = GW_OPT_ENUM, .default_value = "login",                            \
	 .offset = GW_IMAP_ENDPOINT_OPT_(config_type, member, auth),                               \
	 .choices = gw_imap_endpoint_auth_choices,                                                 \
	 .description = "Authentication: login, plain (AUTHENTICATE PLAIN) or xoauth2"},           \
	{.name = "user", .type = GW_OPT_STRING,                                                    \
	 .offset = GW_IMAP_ENDPOINT_OPT_(config_type, member, user),                               \
	 .description = "Login name; default: " user_default},                                     \
	{.name = "password", .type = GW_OPT_SECRET,                                                \
	 .offset = GW_IMAP_ENDPOINT_OPT_(config_type, member, password),                           \
	 .description = "Password; default: " secret_default},                                     \
	{.name = "admin_user", .type = GW_OPT_STRING,                                              \
	 .offset = GW_IMAP_ENDPOINT_OPT_(config_type, member, admin_user),                         \
	 .description = "Admin (master) user: logs in with AUTHENTICATE PLAIN as the "             \
	                "mailbox user"},                                                           \
	{.name = "admin_password", .type = GW_OPT_SECRET,                                          \
	 .offset = GW_IMAP_ENDPOINT_OPT_(config_type, member, admin_password),                     \
	 .description = "Password of admin_user"},                                                 \
	{.name = "oauth_token", .type = GW_OPT_SECRET,                                             \
	 .offset = GW_IMAP_ENDPOINT_OPT_(config_type, member, oauth_token),                        \
	 .description = "OAuth2 access token for auth: xoauth2; default: " secret_default},        \
	{.name = "timeout", .type = GW_OPT_DURATION, .default_value = "60s",                       \
	 .offset = GW_IMAP_ENDPOINT_OPT_(config_type, member, timeout_ms),                         \
	 .description = "Time limit of every network read or write"},                              \
	{.name = "pipeline_depth", .type = GW_OPT_INT, .default_value = "16",                      \
	 .offset = GW_IMAP_ENDPOINT_OPT_(config_type, member, pipeline_depth),                     \
	 .description = pipeline_description}
/* clang-format on */

/* GW_ERR_CONFIG with the option's name if @p ep is out of range or inconsistent. */
gw_status gw_imap_endpoint_check(const struct gw_host *host, struct gw_ctx *ctx,
                                 const struct gw_imap_endpoint *ep);

/* Connection parameters of @p ep; the caller adds what only it knows
 * (fetch_uids_per_command). @p max_literal bounds literals the server sends. */
struct gw_imap_params gw_imap_endpoint_params(const struct gw_imap_endpoint *ep,
                                              uint64_t max_literal);

/* Connect with @p params and log in for @p mailbox. The login name is the
 * profile's user, else the CSV column @p user_column, else UserName, else
 * EmailAddress; the secret the profile's password (oauth_token for xoauth2),
 * else the column @p password_column (a secret reference, resolved), else
 * Password. NULL columns are skipped (the source has none; the sink's are
 * TargetUserName and TargetPassword). admin_user logs in with PLAIN as the
 * mailbox user. On success *conn is the logged-in connection; on failure it
 * is NULL and ctx holds the error (GW_ERR_CONFIG for a missing secret, found
 * before any connection is made). */
gw_status gw_imap_endpoint_open(const struct gw_host *host, struct gw_ctx *ctx,
                                const struct gw_imap_endpoint *ep,
                                const struct gw_imap_params *params,
                                const struct gw_mailbox *mailbox, const char *user_column,
                                const char *password_column, struct gw_imap **conn);

#endif
