#include <curl/curl.h>
/* curl_easy_setopt/getinfo are variadic macros Swift cannot call; typed wrappers. */
static inline CURLcode dl_curl_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode dl_curl_setopt_ptr(CURL *h, CURLoption o, const void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode dl_curl_setopt_off(CURL *h, CURLoption o, curl_off_t v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode dl_curl_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode dl_curl_getinfo_off(CURL *h, CURLINFO i, curl_off_t *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode dl_curl_getinfo_str(CURL *h, CURLINFO i, char **v) { return curl_easy_getinfo(h, i, v); }
typedef size_t (*dl_curl_write_cb)(char *ptr, size_t size, size_t nmemb, void *userdata);
static inline CURLcode dl_curl_setopt_write(CURL *h, CURLoption o, dl_curl_write_cb cb) { return curl_easy_setopt(h, o, cb); }
