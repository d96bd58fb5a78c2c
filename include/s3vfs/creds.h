/* SPDX-License-Identifier: MIT */
/*
 * creds: the AWS credentials chain, in the SDKs' order:
 *   1. explicit keys (options),
 *   2. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
 *   3. shared files: ~/.aws/credentials then ~/.aws/config, profile from the
 *      option, else AWS_PROFILE, else "default" (paths overridable by
 *      AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE; in config the section
 *      is "[profile NAME]", except "[default]"),
 *   4. ECS container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, with
 *      host 169.254.170.2, or AWS_CONTAINER_CREDENTIALS_FULL_URI with optional
 *      AWS_CONTAINER_AUTHORIZATION_TOKEN),
 *   5. EC2 instance metadata with IMDSv2 session tokens (endpoint overridable
 *      by AWS_EC2_METADATA_SERVICE_ENDPOINT; off with AWS_EC2_METADATA_DISABLED=true).
 * Temporary credentials are refreshed when they are within 5 minutes of expiry.
 *
 * Secrets never reach the log: messages name the source, never a key.
 * Thread-safe: creds_get() may be called from any thread (internal lock).
 * Knows nothing of S3: it uses http.c for the metadata endpoints.
 */
#ifndef S3VFS_CREDS_H
#define S3VFS_CREDS_H

#include <stdbool.h>
#include <time.h>

#include "s3vfs/compiler.h"

struct http_client;

struct creds {
	char *access_key;
	char *secret_key;
	char *session_token; /* NULL if none */
	time_t expiration;   /* 0 = does not expire */
};

void creds_cleanup(struct creds *c);

struct creds_config {
	const char *access_key; /* explicit, both or neither */
	const char *secret_key;
	const char *session_token;
	const char *profile; /* NULL: AWS_PROFILE or "default" */
	bool no_imds;	     /* never ask instance metadata (for local test servers) */
};

struct creds_provider;

/*
 * Build the chain and resolve credentials once. 0; -ENOENT when no source has
 * credentials; -EINVAL for a malformed file or a named profile that does not
 * exist; -ENOMEM. hc is borrowed and must outlive the provider.
 */
int creds_provider_new(const struct creds_config *cfg, struct http_client *hc,
		       struct creds_provider **out) WARN_UNUSED;
void creds_provider_free(struct creds_provider *p);

/* Copy current credentials into out (refreshed first if near expiry). 0 or -errno. */
int creds_get(struct creds_provider *p, struct creds *out) WARN_UNUSED;

/* Where the credentials came from: "options", "environment", "profile NAME
 * (FILE)", "ecs", "imds". Borrowed, for logs. */
const char *creds_source(const struct creds_provider *p);

/* AWS_REGION, else AWS_DEFAULT_REGION, else the region of the active profile
 * in the config file (region = ...), as the SDKs do; NULL if none. Caller frees. */
char *creds_region(const char *profile);

/* Parse one INI document and look up key in section; for tests and
 * creds_region. Returns a malloc'd value, or NULL if absent. */
char *creds_ini_lookup(const char *text, const char *section, const char *key);

#endif
