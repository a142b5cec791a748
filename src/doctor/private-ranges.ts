// Address space both the NSG and the SNAT checks reason about: what Azure keeps inside a VNet.

/** RFC 1918 private ranges: the VirtualNetwork tag's default here, and never sent through SNAT. */
export const rfc1918Ranges: readonly string[] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];

/** Azure's host virtual IP (DNS, health probes): in the VirtualNetwork tag, never sent through SNAT. */
export const hostVirtualIp = "168.63.129.16";
