//! `recv(2)` and `send(2)` on a plain socket, as raw system calls.
//!
//! glibc's `recv` and `send` are thread cancellation points: each call
//! enables and then disables asynchronous cancellation around the system
//! call, about 60 user-space instructions per echoed message, a tenth of
//! the whole. wsd never cancels a thread, so the generic `syscall(2)` entry
//! does the same work without them. The kernel's answer is the same; only
//! the wrapper differs. Elsewhere than Linux, the standard library's calls.

use std::io;
#[cfg(target_os = "linux")]
use std::os::fd::AsRawFd;

use mio::net::TcpStream;

/// Reads into `buf` from `socket`: what `Read::read` on it does.
#[inline]
pub fn recv(socket: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the
        // whole call, and the kernel writes no more than that; the
        // descriptor is borrowed from a live socket; the address arguments
        // are null, which recvfrom(2) allows.
        #[allow(unsafe_code)]
        let n = unsafe {
            libc::syscall(
                libc::SYS_recvfrom,
                socket.as_raw_fd(),
                buf.as_mut_ptr(),
                buf.len(),
                0,
                std::ptr::null_mut::<libc::sockaddr>(),
                std::ptr::null_mut::<libc::socklen_t>(),
            )
        };
        usize::try_from(n).map_err(|_| io::Error::last_os_error())
    }
    #[cfg(not(target_os = "linux"))]
    {
        std::io::Read::read(&mut &*socket, buf)
    }
}

/// Writes `buf` to `socket` (without raising `SIGPIPE`): what
/// `Write::write` on it does.
#[inline]
pub fn send(socket: &TcpStream, buf: &[u8]) -> io::Result<usize> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the
        // whole call; the descriptor is borrowed from a live socket; no
        // destination address (null, length 0), as for a connected socket.
        #[allow(unsafe_code)]
        let n = unsafe {
            libc::syscall(
                libc::SYS_sendto,
                socket.as_raw_fd(),
                buf.as_ptr(),
                buf.len(),
                libc::MSG_NOSIGNAL,
                std::ptr::null::<libc::sockaddr>(),
                0 as libc::socklen_t,
            )
        };
        usize::try_from(n).map_err(|_| io::Error::last_os_error())
    }
    #[cfg(not(target_os = "linux"))]
    {
        std::io::Write::write(&mut &*socket, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    #[test]
    fn bytes_go_both_ways_and_errors_are_the_kernels() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        let server = TcpStream::from_std(server);
        assert_eq!(send(&server, b"hello").unwrap(), 5);
        let mut got = [0u8; 5];
        client.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
        // Nothing has come yet: the kernel's EAGAIN, as WouldBlock.
        let e = recv(&server, &mut [0u8; 16]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        client.write_all(b"world!").unwrap();
        let mut buf = Vec::new();
        for _ in 0..200 {
            let mut chunk = [0u8; 16];
            match recv(&server, &mut chunk) {
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) => assert_eq!(e.kind(), io::ErrorKind::WouldBlock),
            }
            if buf.len() == 6 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(buf, b"world!");
        drop(client);
        // The peer is gone: reads end, and a write fails with EPIPE or a
        // reset, as an error, not a signal.
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut failed = false;
        for _ in 0..10 {
            if send(&server, &[0u8; 1024]).is_err() {
                failed = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(failed, "writes to a closed peer must fail");
    }
}
