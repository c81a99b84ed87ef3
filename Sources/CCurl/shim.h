#ifndef PATCHBAY_CCURL_SHIM_H
#define PATCHBAY_CCURL_SHIM_H

#include <curl/curl.h>

// curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call. These typed
// wrappers are the only way Swift sets options or reads results.

typedef size_t (*patchbay_curl_data_callback)(char *data, size_t size, size_t count, void *context);

static inline CURLcode patchbay_curl_set_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode patchbay_curl_set_off_t(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode patchbay_curl_set_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode patchbay_curl_set_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode patchbay_curl_set_headers(CURL *handle, struct curl_slist *headers) {
    return curl_easy_setopt(handle, CURLOPT_HTTPHEADER, headers);
}

static inline CURLcode patchbay_curl_set_write_callback(CURL *handle, patchbay_curl_data_callback callback, void *context) {
    CURLcode code = curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, callback);
    if (code != CURLE_OK) return code;
    return curl_easy_setopt(handle, CURLOPT_WRITEDATA, context);
}

static inline CURLcode patchbay_curl_set_header_callback(CURL *handle, patchbay_curl_data_callback callback, void *context) {
    CURLcode code = curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, callback);
    if (code != CURLE_OK) return code;
    return curl_easy_setopt(handle, CURLOPT_HEADERDATA, context);
}

typedef curl_socket_t (*patchbay_curl_opensocket_callback)(void *context, curlsocktype purpose, struct curl_sockaddr *address);

/// Every socket libcurl opens goes through `callback`, after name resolution: it sees the address
/// actually connected to, so a DNS name that resolves to a private address is caught too.
static inline CURLcode patchbay_curl_set_opensocket_callback(CURL *handle, patchbay_curl_opensocket_callback callback, void *context) {
    CURLcode code = curl_easy_setopt(handle, CURLOPT_OPENSOCKETFUNCTION, callback);
    if (code != CURLE_OK) return code;
    return curl_easy_setopt(handle, CURLOPT_OPENSOCKETDATA, context);
}

/// SMTP uploads: libcurl pulls the message through `callback` (CURLOPT_READFUNCTION).
static inline CURLcode patchbay_curl_set_read_callback(CURL *handle, patchbay_curl_data_callback callback, void *context) {
    CURLcode code = curl_easy_setopt(handle, CURLOPT_READFUNCTION, callback);
    if (code != CURLE_OK) return code;
    return curl_easy_setopt(handle, CURLOPT_READDATA, context);
}

static inline CURLcode patchbay_curl_set_mail_recipients(CURL *handle, struct curl_slist *recipients) {
    CURLcode code = curl_easy_setopt(handle, CURLOPT_MAIL_RCPT, recipients);
    if (code != CURLE_OK) return code;
    // One refused recipient must not stop the mail to the others (the option is spelt with
    // three Ls before libcurl 8.2; without it, libcurl aborts at the first refused RCPT).
#if LIBCURL_VERSION_NUM >= 0x080200
    curl_easy_setopt(handle, CURLOPT_MAIL_RCPT_ALLOWFAILS, 1L);
#elif LIBCURL_VERSION_NUM >= 0x074500
    curl_easy_setopt(handle, CURLOPT_MAIL_RCPT_ALLLOWFAILS, 1L);
#endif
    return CURLE_OK;
}

static inline CURLcode patchbay_curl_get_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode patchbay_curl_get_pointer(CURL *handle, CURLINFO info, void **value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode patchbay_curl_message_result(CURLMsg *message) {
    return message->data.result;
}

static inline CURLMcode patchbay_curl_multi_set_long(CURLM *multi, CURLMoption option, long value) {
    return curl_multi_setopt(multi, option, value);
}

#endif
