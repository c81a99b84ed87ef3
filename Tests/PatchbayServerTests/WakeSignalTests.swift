import Testing
@testable import PatchbayServer

@Suite("Wake signal")
struct WakeSignalTests {
    @Test func aNotificationIsTakenOnceAndNotificationsCoalesce() {
        let wake = WakeSignal()
        #expect(!wake.consumeNotification())
        wake.notify()
        wake.notify()
        #expect(wake.consumeNotification())
        #expect(!wake.consumeNotification(), "two notifications before a look are one wake-up")
    }

    @Test func waitReturnsAtOnceWhenNotifiedAndOtherwiseAfterTheTimeout() async {
        let wake = WakeSignal()
        wake.notify()
        let clock = ContinuousClock()
        let notified = await clock.measure { await wake.wait(timeout: .seconds(30)) }
        #expect(notified < .seconds(5), "an earlier notification ends the wait at once")
        let timedOut = await clock.measure { await wake.wait(timeout: .milliseconds(50)) }
        #expect(timedOut >= .milliseconds(50))
        #expect(!wake.consumeNotification())
    }

    @Test func aNotificationWakesAWaiter() async {
        let wake = WakeSignal()
        let clock = ContinuousClock()
        let start = clock.now
        let waiter = Task { await wake.wait(timeout: .seconds(30)) }
        try? await Task.sleep(for: .milliseconds(20))
        wake.notify()
        await waiter.value
        #expect(clock.now - start < .seconds(5), "woken by the notification, not by the 30 s timeout")
    }
}
