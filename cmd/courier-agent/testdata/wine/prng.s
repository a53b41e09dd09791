# ProcessPrng for Wine 8, which lacks bcryptprimitives.dll: Go 1.22 and
# later load it at start and die without it. It calls advapi32's
# RtlGenRandom (SystemFunction036) and returns its BOOLEAN as a BOOL.
	.text
	.globl	ProcessPrng
ProcessPrng:
	subq	$40, %rsp
	call	*__imp_SystemFunction036(%rip)
	movzbl	%al, %eax
	addq	$40, %rsp
	ret
