import CCurl
import Foundation
import Logging
import PatchbayCore
import Synchronization

/// HTTP client for outbound delivery over the libcurl multi interface: one thread drives every
/// transfer, connections are reused across requests to the same host, redirects are never
/// followed, and only http/https are allowed.
///
/// A thin handle over `CurlMultiLoop`: the loop's thread holds the loop strongly, so the loop
/// outlives every callback it runs; dropping the last handle stops the thread and waits for it.
/// (The loop once lived in this class with an unretained reference from its thread; the thread's
/// last release could then land after `deinit` returned, and the runtime aborted with "deallocated
/// with non-zero retain count".)
public final class CurlTransport: HTTPTransport, Sendable {
    /// Longest response body kept by default: enough for an error message or a created object's id.
    public static let maxResponseBytes = 64 * 1024
    /// This transport's limit (tests reading `/metrics` need more than a vendor answer).
    public var responseLimit: Int { loop.responseLimit }
    /// Connections opened so far; far fewer than requests when connections are reused.
    public var newConnections: Int { loop.newConnections }

    private let loop: CurlMultiLoop

    public init(
        redactor: Redactor, logger: Logger, userAgent: String = "Patchbay/1.0", maxHostConnections: Int = 8,
        responseLimit: Int = maxResponseBytes
    ) {
        loop = CurlMultiLoop(
            redactor: redactor, logger: logger, userAgent: userAgent,
            maxHostConnections: maxHostConnections, responseLimit: responseLimit)
    }

    /// Stops the transfer thread; transfers still running fail with a transport error.
    public func shutdown() { loop.shutdown() }

    deinit { loop.shutdown() }

    /// Cancelling the calling task aborts the transfer (shutdown past its grace period).
    /// A request with `fallbackURLs` goes to the next URL only when no connection to the one
    /// before could be made: a request that reached a server may have taken effect there.
    public func send(_ request: OutboundRequest, timeouts: TransportTimeouts) async -> Result<TransportResponse, TransportFailure> {
        var result = await loop.send(request, timeouts: timeouts)
        for url in request.fallbackURLs {
            guard case .failure(let failure) = result, failure.kind == .connect, !Task.isCancelled else { break }
            var next = request
            next.url = url
            result = await loop.send(next, timeouts: timeouts)
        }
        return result
    }
}

/// The multi handle and the thread that drives it. Only that thread touches `active` and the
/// easy handles; other threads hand work over through `inbox` and `cancellations` and wake it.
final class CurlMultiLoop: @unchecked Sendable {
    let responseLimit: Int

    private let multi: UnsafeMutableRawPointer
    private let inbox = Mutex<[Transfer]>([])
    private let stopping = Atomic<Bool>(false)
    private let redactor: Redactor
    private let logger: Logger
    private let userAgent: String
    private let finished = DispatchSemaphore(value: 0)
    private let connectionsOpened = Atomic<Int>(0)

    var newConnections: Int { connectionsOpened.load(ordering: .relaxed) }

    private static let globalInit: Void = {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT))
    }()

    init(redactor: Redactor, logger: Logger, userAgent: String, maxHostConnections: Int, responseLimit: Int) {
        _ = Self.globalInit
        self.responseLimit = max(1, responseLimit)
        multi = curl_multi_init()
        self.redactor = redactor
        self.logger = logger
        self.userAgent = userAgent
        patchbay_curl_multi_set_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, maxHostConnections)
        // The thread keeps the loop alive until `runLoop` returns (after `shutdown`); the thread
        // object is not stored here, which would make a cycle.
        let thread = Thread { [self] in
            self.runLoop()
        }
        thread.name = "patchbay-curl"
        thread.start()
    }

    /// Idempotent; returns once the thread has failed every transfer still running.
    func shutdown() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        curl_multi_wakeup(multi)
        finished.wait()
    }

    deinit {
        curl_multi_cleanup(multi)
    }

    func send(_ request: OutboundRequest, timeouts: TransportTimeouts) async -> Result<TransportResponse, TransportFailure> {
        let box = TransferBox()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let transfer = Transfer(request: request, timeouts: timeouts, responseLimit: responseLimit, continuation: continuation)
                box.transfer.withLock { $0 = transfer }
                // `stopping` is read under the inbox's lock: the thread empties the inbox under it
                // once it has seen `stopping`, so a transfer is either failed here or by the
                // thread, never left waiting in an inbox no one reads.
                let queued = inbox.withLock { inbox -> Bool in
                    guard !stopping.load(ordering: .acquiring), !Task.isCancelled else { return false }
                    inbox.append(transfer)
                    return true
                }
                guard queued else {
                    transfer.finish(.failure(TransportFailure(kind: .other, message: "transfer cancelled", latency: .zero)))
                    return
                }
                curl_multi_wakeup(multi)
            }
        } onCancel: {
            guard let transfer = box.transfer.withLock({ $0 }) else { return }
            cancellations.withLock { $0.append(ObjectIdentifier(transfer)) }
            curl_multi_wakeup(multi)
        }
    }

    private final class TransferBox: Sendable {
        let transfer = Mutex<Transfer?>(nil)
    }

    private let cancellations = Mutex<[ObjectIdentifier]>([])

    // MARK: The transfer thread

    private var active: [UnsafeMutableRawPointer: Transfer] = [:]

    private func runLoop() {
        var running: Int32 = 0
        while !stopping.load(ordering: .acquiring) {
            for transfer in inbox.withLock({ inbox in
                defer { inbox.removeAll() }
                return inbox
            }) {
                start(transfer)
            }
            for id in cancellations.withLock({ list in
                defer { list.removeAll() }
                return list
            }) {
                cancel(id)
            }
            curl_multi_perform(multi, &running)
            collectFinished()
            curl_multi_poll(multi, nil, 0, 1000, nil)
        }
        let failure = TransportFailure(kind: .other, message: "transport shut down before the response arrived", latency: .zero)
        for (easy, transfer) in active {
            curl_multi_remove_handle(multi, easy)
            curl_easy_cleanup(easy)
            transfer.finish(.failure(failure))
        }
        active.removeAll()
        for transfer in inbox.withLock({ inbox in
            defer { inbox.removeAll() }
            return inbox
        }) {
            transfer.finish(.failure(failure))
        }
        finished.signal()
    }

    private func cancel(_ id: ObjectIdentifier) {
        guard let (easy, transfer) = active.first(where: { ObjectIdentifier($0.value) == id }) else { return }
        active.removeValue(forKey: easy)
        curl_multi_remove_handle(multi, easy)
        curl_easy_cleanup(easy)
        transfer.finish(.failure(TransportFailure(kind: .other, message: "transfer cancelled", latency: ContinuousClock.now - transfer.startedAt)))
    }

    private func start(_ transfer: Transfer) {
        guard let easy = curl_easy_init() else {
            transfer.finish(.failure(TransportFailure(kind: .other, message: "curl_easy_init failed", latency: .zero)))
            return
        }
        let request = transfer.request
        let context = Unmanaged.passUnretained(transfer).toOpaque()
        patchbay_curl_set_string(easy, CURLOPT_URL, request.url.reveal())
        if let caFile = request.caFile { patchbay_curl_set_string(easy, CURLOPT_CAINFO, caFile) }
        patchbay_curl_set_string(easy, CURLOPT_PROTOCOLS_STR, request.mail == nil ? "http,https" : "smtp,smtps")
        patchbay_curl_set_long(easy, CURLOPT_FOLLOWLOCATION, 0)
        patchbay_curl_set_long(easy, CURLOPT_NOSIGNAL, 1)
        patchbay_curl_set_long(easy, CURLOPT_CONNECTTIMEOUT_MS, Int(transfer.timeouts.connect.milliseconds))
        patchbay_curl_set_long(easy, CURLOPT_TIMEOUT_MS, Int(transfer.timeouts.total.milliseconds))
        patchbay_curl_set_string(easy, CURLOPT_USERAGENT, userAgent)
        patchbay_curl_set_pointer(easy, CURLOPT_PRIVATE, context)
        patchbay_curl_set_pointer(easy, CURLOPT_ERRORBUFFER, transfer.errorBuffer)
        patchbay_curl_set_write_callback(
            easy,
            { data, size, count, context in
                let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
                let length = size * count
                if let data, transfer.body.count < transfer.responseLimit {
                    let keep = min(length, transfer.responseLimit - transfer.body.count)
                    data.withMemoryRebound(to: UInt8.self, capacity: keep) { transfer.body.append($0, count: keep) }
                }
                // Once the kept bytes are in, stop reading: an endless body must not turn a delivered
                // answer into a timeout (and a duplicate send). curl ends the transfer with
                // CURLE_WRITE_ERROR, which `collectFinished` reads as "status known, body cut".
                if transfer.body.count >= transfer.responseLimit {
                    transfer.truncated = true
                    return 0
                }
                return length
            }, context)
        if request.destinations != .any {
            // No proxy from the environment (the callback would only see the proxy's address),
            // and no pooled connection another policy opened (the callback would not run at all).
            patchbay_curl_set_string(easy, CURLOPT_PROXY, "")
            patchbay_curl_set_long(easy, CURLOPT_FRESH_CONNECT, 1)
            patchbay_curl_set_opensocket_callback(
                easy,
                { context, _, address in
                    let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
                    guard let address, transfer.allows(address) else {
                        transfer.refusedDestination = true
                        return CURL_SOCKET_BAD
                    }
                    return socket(address.pointee.family, address.pointee.socktype, address.pointee.protocol)
                }, context)
        }
        patchbay_curl_set_header_callback(
            easy,
            { data, size, count, context in
                let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
                let length = size * count
                if let data {
                    transfer.receiveHeaderLine(UnsafeRawBufferPointer(start: data, count: length))
                }
                return length
            }, context)

        if let mail = request.mail {
            startMail(easy, mail, transfer: transfer, context: context)
            return
        }
        var headers: UnsafeMutablePointer<curl_slist>?
        for header in request.headers {
            headers = curl_slist_append(headers, "\(header.name): \(header.value)")
        }
        // Without this, curl sends `Expect: 100-continue` for larger bodies and waits for an answer.
        headers = curl_slist_append(headers, "Expect:")
        transfer.headerList = headers
        patchbay_curl_set_headers(easy, headers)

        switch request.method {
        case "GET":
            patchbay_curl_set_long(easy, CURLOPT_HTTPGET, 1)
        case "POST":
            setBody(easy, request.body)
        default:
            patchbay_curl_set_string(easy, CURLOPT_CUSTOMREQUEST, request.method)
            if !request.body.isEmpty || request.method != "DELETE" { setBody(easy, request.body) }
        }
        transfer.startedAt = ContinuousClock.now
        active[easy] = transfer
        curl_multi_add_handle(multi, easy)
    }

    /// An e-mail: the envelope, STARTTLS required unless the target allows otherwise, and the
    /// whole message uploaded through the read callback (libcurl dot-stuffs it and ends it).
    private func startMail(_ easy: UnsafeMutableRawPointer, _ mail: MailEnvelope, transfer: Transfer, context: UnsafeMutableRawPointer) {
        patchbay_curl_set_string(easy, CURLOPT_MAIL_FROM, "<\(mail.from)>")
        var recipients: UnsafeMutablePointer<curl_slist>?
        for recipient in mail.recipients { recipients = curl_slist_append(recipients, "<\(recipient)>") }
        transfer.headerList = recipients
        patchbay_curl_set_mail_recipients(easy, recipients)
        // A connection of its own for every mail: libcurl's cache would otherwise hand a clear-text
        // connection another target opened to a target that requires STARTTLS (seen in the e-mail
        // test), and mail volumes are small.
        patchbay_curl_set_long(easy, CURLOPT_FRESH_CONNECT, 1)
        patchbay_curl_set_long(easy, CURLOPT_FORBID_REUSE, 1)
        // CURLUSESSL_ALL: STARTTLS or fail (CURLE_USE_SSL_FAILED); TRY upgrades when offered.
        patchbay_curl_set_long(easy, CURLOPT_USE_SSL, Int(mail.requireTLS ? CURLUSESSL_ALL.rawValue : CURLUSESSL_TRY.rawValue))
        if let username = mail.username { patchbay_curl_set_string(easy, CURLOPT_USERNAME, username.reveal()) }
        if let password = mail.password { patchbay_curl_set_string(easy, CURLOPT_PASSWORD, password.reveal()) }
        patchbay_curl_set_long(easy, CURLOPT_UPLOAD, 1)
        patchbay_curl_set_off_t(easy, CURLOPT_INFILESIZE_LARGE, curl_off_t(transfer.request.body.count))
        patchbay_curl_set_read_callback(
            easy,
            { buffer, size, count, context in
                let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
                let body = transfer.request.body
                let length = min(size * count, body.count - transfer.uploaded)
                guard length > 0, let buffer else { return 0 }
                body.withUnsafeBytes { bytes in
                    UnsafeMutableRawPointer(buffer).copyMemory(from: bytes.baseAddress!.advanced(by: transfer.uploaded), byteCount: length)
                }
                transfer.uploaded += length
                return length
            }, context)
        transfer.startedAt = ContinuousClock.now
        active[easy] = transfer
        curl_multi_add_handle(multi, easy)
    }

    private func setBody(_ easy: UnsafeMutableRawPointer, _ body: Data) {
        patchbay_curl_set_off_t(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count))
        if body.isEmpty {
            patchbay_curl_set_string(easy, CURLOPT_COPYPOSTFIELDS, "")
            return
        }
        body.withUnsafeBytes { bytes in
            // COPYPOSTFIELDS copies, so the buffer need not outlive this call.
            _ = patchbay_curl_set_pointer(easy, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: bytes.baseAddress!))
        }
    }

    private func collectFinished() {
        var remaining: Int32 = 0
        while let message = curl_multi_info_read(multi, &remaining) {
            guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle else { continue }
            let code = patchbay_curl_message_result(message)
            curl_multi_remove_handle(multi, easy)
            guard let transfer = active.removeValue(forKey: easy) else {
                curl_easy_cleanup(easy)
                continue
            }
            let latency = ContinuousClock.now - transfer.startedAt
            var connects = 0
            patchbay_curl_get_long(easy, CURLINFO_NUM_CONNECTS, &connects)
            connectionsOpened.add(connects, ordering: .relaxed)
            var status = 0
            patchbay_curl_get_long(easy, CURLINFO_RESPONSE_CODE, &status)
            if code == CURLE_OK || (code == CURLE_WRITE_ERROR && transfer.truncated) {
                transfer.finish(.success(TransportResponse(status: status, headers: transfer.responseHeaders, body: transfer.body, latency: latency)))
            } else if transfer.request.mail != nil, (400..<600).contains(status) {
                // An SMTP server refused the mail: 451 and 550 both end in CURLE_SEND_ERROR, and only
                // the reply code tells "try later" from "never" (RFC 5321 4.2.1), so it is the answer.
                let detail = String(cString: transfer.errorBuffer.assumingMemoryBound(to: CChar.self))
                transfer.finish(.success(TransportResponse(status: status, headers: [], body: Data(redactor.redact(detail).utf8), latency: latency)))
            } else {
                transfer.finish(.failure(failure(for: code, transfer: transfer, latency: latency)))
            }
            curl_easy_cleanup(easy)
        }
    }

    private func failure(for code: CURLcode, transfer: Transfer, latency: Duration) -> TransportFailure {
        if transfer.refusedDestination {
            return TransportFailure(
                kind: .refused,
                message: "the destination resolves to a loopback, private, link-local or multicast address, "
                    + "which this target may not reach (allowPrivateNetworks: true allows it)", latency: latency)
        }
        let kind: TransportFailure.Kind =
            switch code {
            case CURLE_OPERATION_TIMEDOUT: .timeout
            case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY: .connect
            case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM: .tls
            default: .other
            }
        let detail = String(cString: transfer.errorBuffer.assumingMemoryBound(to: CChar.self))
        let text = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
        return TransportFailure(kind: kind, message: redactor.redact(text), latency: latency)
    }
}

/// One request in flight. Touched only by the transfer thread until `finish`.
private final class Transfer: @unchecked Sendable {
    let request: OutboundRequest
    let timeouts: TransportTimeouts
    private var continuation: CheckedContinuation<Result<TransportResponse, TransportFailure>, Never>?
    var body = Data()
    let responseLimit: Int
    /// The body reached `responseLimit` and the rest was not read.
    var truncated = false
    /// The open-socket callback refused the resolved address.
    var refusedDestination = false

    /// Whether the request's destination policy lets it connect to `address`.
    func allows(_ address: UnsafeMutablePointer<curl_sockaddr>) -> Bool {
        let policy = request.destinations
        switch address.pointee.family {
        case AF_INET:
            return withUnsafePointer(to: &address.pointee.addr) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { policy.allows(ipv4: UInt32(bigEndian: $0.pointee.sin_addr.s_addr)) }
            }
        case AF_INET6:
            return withUnsafePointer(to: &address.pointee.addr) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                    let bytes = withUnsafeBytes(of: pointer.pointee.sin6_addr) { Array($0) }
                    return policy.allows(ipv6: bytes)
                }
            }
        default:
            return false
        }
    }
    var responseHeaders: [HTTPHeader] = []
    /// Header bytes received; a vendor sending more than `maxHeaderBytes` has the rest ignored.
    var headerBytes = 0
    static let maxHeaderBytes = 64 * 1024
    /// HTTP headers, or an e-mail's recipients: freed with the transfer.
    var headerList: UnsafeMutablePointer<curl_slist>?
    /// Bytes of an e-mail the read callback has handed to libcurl.
    var uploaded = 0
    var startedAt = ContinuousClock.now
    let errorBuffer = UnsafeMutableRawPointer.allocate(byteCount: Int(CURL_ERROR_SIZE) + 1, alignment: 1)

    init(
        request: OutboundRequest, timeouts: TransportTimeouts, responseLimit: Int,
        continuation: CheckedContinuation<Result<TransportResponse, TransportFailure>, Never>
    ) {
        self.responseLimit = responseLimit
        self.request = request
        self.timeouts = timeouts
        self.continuation = continuation
        errorBuffer.initializeMemory(as: UInt8.self, repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    }

    deinit {
        errorBuffer.deallocate()
        if let headerList { curl_slist_free_all(headerList) }
    }

    /// One header line as libcurl hands it over (CRLF included).
    func receiveHeaderLine(_ line: UnsafeRawBufferPointer) {
        switch HeaderLine.parse(line) {
        case .status:
            // A new status line starts a new response (after a 100 Continue): keep only the last one's headers.
            responseHeaders.removeAll()
        case .field(let header):
            headerBytes += line.count
            if headerBytes <= Self.maxHeaderBytes { responseHeaders.append(header) }
        case .other:
            headerBytes += line.count
        }
    }

    func finish(_ result: Result<TransportResponse, TransportFailure>) {
        continuation?.resume(returning: result)
        continuation = nil
    }
}

/// A response header line, parsed as bytes: Foundation's `trimmingCharacters` here was 5 % of the
/// delivery profile.
enum HeaderLine: Equatable {
    /// `HTTP/1.1 200 OK`: a response (perhaps after a 100 Continue) begins.
    case status
    case field(HTTPHeader)
    /// The blank line that ends the headers, or a line without a colon.
    case other

    static func parse(_ line: UnsafeRawBufferPointer) -> HeaderLine {
        if line.starts(with: "HTTP/".utf8) { return .status }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return .other }
        let name = trimmingWhitespace(line[..<colon])
        let value = trimmingWhitespace(line[(colon + 1)...])
        return .field(HTTPHeader(String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
    }

    /// Without HTTP's optional whitespace (space, tab) and the line's CR LF at either end.
    static func trimmingWhitespace(_ bytes: Slice<UnsafeRawBufferPointer>) -> Slice<UnsafeRawBufferPointer> {
        func isWhitespace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0A }
        var start = bytes.startIndex
        var end = bytes.endIndex
        while start < end, isWhitespace(bytes[start]) { start += 1 }
        while end > start, isWhitespace(bytes[end - 1]) { end -= 1 }
        return bytes[start..<end]
    }
}
