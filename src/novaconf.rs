//! Discovery of the settings nova uses from `nova.conf` (oslo.config INI syntax).
