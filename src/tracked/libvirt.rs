//! The libvirt source: nova's metadata in the persistent domain XML files of this host.
