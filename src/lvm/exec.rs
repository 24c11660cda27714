//! Running the real `vgs`/`lvs`: no shell, `LC_ALL=C`, a timeout that kills the process group.
