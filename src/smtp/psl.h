/* The Public Suffix List (publicsuffix.org; Debian's publicsuffix package) and the one
 * question DMARC asks of it (RFC 7489 §3.2): the organizational domain of a name, the
 * registrable domain one label below its public suffix. Rules are matched by the list's
 * algorithm (wildcards, exceptions, the longest rule wins, "*" when none matches), on
 * ASCII names without case; rules in Unicode match only names written the same way. */
#ifndef POSTHORN_SMTP_PSL_H
#define POSTHORN_SMTP_PSL_H

#define PSL_DEFAULT_PATH "/usr/share/publicsuffix/public_suffix_list.dat"

struct psl;

/* Read the list at path. NULL with *error_r (static text) when it cannot be read or holds
 * no rule. */
struct psl *psl_load(const char *path, const char **error_r) __attribute__((warn_unused_result));
/* The same from text in memory (tests). Never NULL. */
struct psl *psl_parse(const char *text);
/* Frees the list; sets *psl to NULL; accepts NULL. */
void psl_free(struct psl **psl);
/* The organizational domain of domain (no trailing dot): a pointer into domain at the start
 * of its registrable part, or NULL when domain is a public suffix itself or empty. */
const char *psl_org_domain(const struct psl *psl, const char *domain);

#endif
