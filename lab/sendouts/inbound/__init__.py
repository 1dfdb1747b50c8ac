"""The send-out desk's results coming back: the upload page, the unmatched and identity-hold queues."""
