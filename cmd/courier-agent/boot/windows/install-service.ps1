<#
.SYNOPSIS
  Runs courier-agent as a Windows service from boot, as the workspace
  user: the alternative to install-agent.ps1's logon task for workspaces
  without an interactive logon.

.DESCRIPTION
  Run once as an administrator, after copying courier-agent.exe:

    powershell -NoProfile -ExecutionPolicy Bypass -File install-service.ps1 `
      -Url https://courier.example.com -AgentToken $token -User .\coder -Password $pw `
      -UserProfile C:\Users\coder

  The service runs as the workspace user (so file secrets land in that
  user's profile and sessions run as that user), starts at boot, restarts
  after a failure, and takes the service manager's stop as a clean
  shutdown (the workspace shows "off"). A service has no console, so the
  agent logs to a file (--log-file). --service says it is a service.
#>
param(
  [Parameter(Mandatory = $true)] [string] $Url,
  [Parameter(Mandatory = $true)] [string] $AgentToken,
  [Parameter(Mandatory = $true)] [string] $User,
  [Parameter(Mandatory = $true)] [string] $Password,
  [Parameter(Mandatory = $true)] [string] $UserProfile, # the user's profile, e.g. C:\Users\coder
  [string] $Exe = "$env:ProgramFiles\Courier\courier-agent.exe",
  [string] $ServiceName = "CourierAgent"
)
$ErrorActionPreference = "Stop"

if (-not (Test-Path $Exe)) { throw "courier-agent.exe not found at $Exe (pass -Exe)" }
$dataDir = Join-Path $UserProfile "AppData\Local\courier-agent"
New-Item -ItemType Directory -Force -Path $dataDir | Out-Null
icacls $dataDir /inheritance:r /grant:r "${User}:(OI)(CI)F" | Out-Null
if ($LASTEXITCODE -ne 0) { throw "icacls could not restrict $dataDir" }
$tokenFile = Join-Path $dataDir "agent-token"
Set-Content -Path $tokenFile -Value $AgentToken -NoNewline -Encoding ascii

$bin = "`"$Exe`" --service --url `"$Url`" --token-file `"$tokenFile`" " +
  "--data-dir `"$dataDir`" --home `"$UserProfile`" --log-file `"$dataDir\agent.log`""
$cred = New-Object System.Management.Automation.PSCredential($User,
  (ConvertTo-SecureString $Password -AsPlainText -Force))
New-Service -Name $ServiceName -BinaryPathName $bin -Credential $cred `
  -StartupType Automatic -DisplayName "Courier workspace agent" | Out-Null
# Restart 5 s after each failure; the failure count resets daily.
sc.exe failure $ServiceName reset= 86400 actions= restart/5000/restart/5000/restart/5000 | Out-Null
Start-Service -Name $ServiceName
Write-Host "Service ${ServiceName} runs courier-agent as ${User}; logs in $dataDir\agent.log."
