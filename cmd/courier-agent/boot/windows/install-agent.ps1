<#
.SYNOPSIS
  Starts courier-agent at logon of the workspace user on a Windows
  workspace, and keeps it running: a scheduled task, the Windows
  counterpart of courier-agent.service.

.DESCRIPTION
  Run once, as the workspace user (or by the template's provisioning, as
  an administrator naming that user), after copying courier-agent.exe:

    powershell -NoProfile -ExecutionPolicy Bypass -File install-agent.ps1 `
      -Url https://courier.example.com -AgentToken $token

  The token goes to a file readable by the workspace user only (the agent
  reads it with --token-file and never puts it in its environment), the
  task runs the agent as that user at logon with no time limit, and Task
  Scheduler restarts it every minute if it exits. File secrets are written
  under the user's profile (~/ is %USERPROFILE%), startup scripts and SSH
  sessions run in %COMSPEC% (cmd.exe) unless -Shell names another.
  Windows starts a logon task only once the user is logged on: give the
  workspace VM auto-logon for that user, as interactive workspaces have.
#>
param(
  [Parameter(Mandatory = $true)] [string] $Url,
  [Parameter(Mandatory = $true)] [string] $AgentToken,
  [string] $User = "$env:USERDOMAIN\$env:USERNAME",
  [string] $Exe = "$env:ProgramFiles\Courier\courier-agent.exe",
  [string] $DataDir = "$env:LOCALAPPDATA\courier-agent",
  [string] $TaskName = "CourierAgent"
)
$ErrorActionPreference = "Stop"

if (-not (Test-Path $Exe)) { throw "courier-agent.exe not found at $Exe (pass -Exe)" }
New-Item -ItemType Directory -Force -Path $DataDir | Out-Null

# The token file: the user alone may read it (no inherited entries).
$tokenFile = Join-Path $DataDir "agent-token"
Set-Content -Path $tokenFile -Value $AgentToken -NoNewline -Encoding ascii
icacls $tokenFile /inheritance:r /grant:r "${User}:(R,W)" | Out-Null
if ($LASTEXITCODE -ne 0) { throw "icacls could not restrict $tokenFile" }

$action = New-ScheduledTaskAction -Execute $Exe `
  -Argument "--url `"$Url`" --token-file `"$tokenFile`" --data-dir `"$DataDir`" --log-format json"
$trigger = New-ScheduledTaskTrigger -AtLogOn -User $User
$settings = New-ScheduledTaskSettingsSet -ExecutionTimeLimit ([TimeSpan]::Zero) `
  -RestartCount 9999 -RestartInterval (New-TimeSpan -Minutes 1) `
  -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries -StartWhenAvailable
$principal = New-ScheduledTaskPrincipal -UserId $User -LogonType Interactive -RunLevel Limited
Register-ScheduledTask -TaskName $TaskName -Action $action -Trigger $trigger `
  -Settings $settings -Principal $principal -Force | Out-Null
Write-Host "Registered scheduled task ${TaskName}: courier-agent starts at logon of ${User}."
# Start it now too, so the workspace need not log on again.
Start-ScheduledTask -TaskName $TaskName
