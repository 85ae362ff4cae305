#!/usr/bin/python3
"""A StatusNotifierWatcher stand-in and a tray menu reader, for tests.

Desktop trays (KDE, GNOME with the AppIndicator extension, waybar, ...)
run an `org.kde.StatusNotifierWatcher` that tray icons register with; an
icon only exports its menu (`com.canonical.dbusmenu`) once registered. A
bare test session has no watcher, so this script provides one, and reads
and clicks the registered icon's menu exactly as a real tray host would.

usage:
  tray-dbus.py watch          own the watcher name; prints "ready", then one
                              "registered ITEM" line per registration
  tray-dbus.py layout         print the first registered icon's menu as JSON
                              (GetLayout with full recursion)
  tray-dbus.py click ID       send a "clicked" Event to menu item ID
  tray-dbus.py icon           print the icon's properties as JSON
  tray-dbus.py latency SHOWN GONE RUNS -- CMD...
                              RUNS times: start CMD and read the menu every
                              5 ms until an item's label contains SHOWN
                              (prints the milliseconds from starting CMD),
                              then stop CMD (SIGTERM) and wait until a label
                              contains GONE
  tray-dbus.py notifications  own org.freedesktop.Notifications (a desktop's
                              notification daemon); prints "ready", then one
                              JSON line {"app","summary","body"} per
                              notification shown

Everything talks to the session bus of $DBUS_SESSION_BUS_ADDRESS.
"""

import json
import sys

import dbus
import dbus.service

WATCHER = "org.kde.StatusNotifierWatcher"
WATCHER_PATH = "/StatusNotifierWatcher"
ITEM_IFACE = "org.kde.StatusNotifierItem"
MENU_IFACE = "com.canonical.dbusmenu"
PROPS = "org.freedesktop.DBus.Properties"


class Watcher(dbus.service.Object):
    """The watcher: records items and hosts, signals registrations."""

    def __init__(self, bus):
        super().__init__(bus, WATCHER_PATH)
        self.bus = bus
        self.items = []
        self.hosts = []

    @dbus.service.method(WATCHER, in_signature="s", out_signature="", sender_keyword="sender")
    def RegisterStatusNotifierItem(self, service, sender=None):
        # An item passes its object path (AppIndicator) or its bus name (KDE).
        item = sender + service if service.startswith("/") else service
        if item not in self.items:
            self.items.append(item)
        print(f"registered {item}", flush=True)
        self.StatusNotifierItemRegistered(item)

    @dbus.service.method(WATCHER, in_signature="s", out_signature="", sender_keyword="sender")
    def RegisterStatusNotifierHost(self, service, sender=None):
        self.hosts.append(service)
        self.StatusNotifierHostRegistered()

    @dbus.service.signal(WATCHER, signature="s")
    def StatusNotifierItemRegistered(self, item):
        pass

    @dbus.service.signal(WATCHER, signature="s")
    def StatusNotifierItemUnregistered(self, item):
        pass

    @dbus.service.signal(WATCHER, signature="")
    def StatusNotifierHostRegistered(self):
        pass

    def properties(self):
        return {
            "RegisteredStatusNotifierItems": dbus.Array(self.items, signature="s"),
            # A host is always there: this script is the host.
            "IsStatusNotifierHostRegistered": dbus.Boolean(True),
            "ProtocolVersion": dbus.Int32(0),
        }

    @dbus.service.method(PROPS, in_signature="ss", out_signature="v")
    def Get(self, interface, name):
        return self.properties()[name]

    @dbus.service.method(PROPS, in_signature="s", out_signature="a{sv}")
    def GetAll(self, interface):
        return self.properties()

    def forget(self, name, old, new):
        """Drops the items of a bus name that left the bus."""
        if new:
            return
        for item in [i for i in self.items if i.startswith(name + "/") or i == name]:
            self.items.remove(item)
            print(f"unregistered {item}", flush=True)
            self.StatusNotifierItemUnregistered(item)


def watch():
    from dbus.mainloop.glib import DBusGMainLoop
    from gi.repository import GLib

    DBusGMainLoop(set_as_default=True)
    bus = dbus.SessionBus()
    name = dbus.service.BusName(WATCHER, bus, do_not_queue=True)
    watcher = Watcher(bus)
    bus.add_signal_receiver(
        watcher.forget,
        signal_name="NameOwnerChanged",
        dbus_interface="org.freedesktop.DBus",
        path="/org/freedesktop/DBus",
    )
    print("ready", flush=True)
    loop = GLib.MainLoop()
    try:
        loop.run()
    except KeyboardInterrupt:
        pass
    del name


NOTIFICATIONS = "org.freedesktop.Notifications"
NOTIFICATIONS_PATH = "/org/freedesktop/Notifications"


class Notifications(dbus.service.Object):
    """The notification daemon: prints every notification it is asked to show."""

    def __init__(self, bus):
        super().__init__(bus, NOTIFICATIONS_PATH)
        self.next_id = 0

    @dbus.service.method(NOTIFICATIONS, in_signature="susssasa{sv}i", out_signature="u")
    def Notify(self, app, replaces, icon, summary, body, actions, hints, timeout):
        self.next_id += 1
        print(json.dumps({"app": str(app), "summary": str(summary), "body": str(body)}, ensure_ascii=False), flush=True)
        return dbus.UInt32(replaces or self.next_id)

    @dbus.service.method(NOTIFICATIONS, in_signature="", out_signature="as")
    def GetCapabilities(self):
        return dbus.Array(["body"], signature="s")

    @dbus.service.method(NOTIFICATIONS, in_signature="", out_signature="ssss")
    def GetServerInformation(self):
        return ("tray-dbus", "omniclaw-tests", "1", "1.2")

    @dbus.service.method(NOTIFICATIONS, in_signature="u", out_signature="")
    def CloseNotification(self, notification_id):
        self.NotificationClosed(notification_id, dbus.UInt32(3))

    @dbus.service.signal(NOTIFICATIONS, signature="uu")
    def NotificationClosed(self, notification_id, reason):
        pass


def notifications():
    from dbus.mainloop.glib import DBusGMainLoop
    from gi.repository import GLib

    DBusGMainLoop(set_as_default=True)
    bus = dbus.SessionBus()
    name = dbus.service.BusName(NOTIFICATIONS, bus, do_not_queue=True)
    daemon = Notifications(bus)
    print("ready", flush=True)
    try:
        GLib.MainLoop().run()
    except KeyboardInterrupt:
        pass
    del name, daemon


def first_item(bus):
    watcher = bus.get_object(WATCHER, WATCHER_PATH)
    items = watcher.Get(WATCHER, "RegisteredStatusNotifierItems", dbus_interface=PROPS)
    if not items:
        sys.exit("tray-dbus: no tray icon is registered with the watcher yet")
    item = str(items[0])
    slash = item.find("/")
    if slash < 0:
        return item, "/StatusNotifierItem"
    return item[:slash], item[slash:]


def menu_of(bus):
    service, path = first_item(bus)
    item = bus.get_object(service, path)
    menu_path = item.Get(ITEM_IFACE, "Menu", dbus_interface=PROPS)
    return bus.get_object(service, menu_path)


def plain(value):
    """D-Bus values to JSON-able Python values."""
    if isinstance(value, (dbus.String, dbus.ObjectPath)):
        return str(value)
    if isinstance(value, dbus.Boolean):
        return bool(value)
    if isinstance(value, (dbus.Int16, dbus.Int32, dbus.Int64, dbus.UInt16, dbus.UInt32, dbus.UInt64, dbus.Byte)):
        return int(value)
    if isinstance(value, dbus.Double):
        return float(value)
    if isinstance(value, dbus.Dictionary):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (dbus.Array, dbus.Struct, list, tuple)):
        if isinstance(value, dbus.Array) and value.signature == "y":
            return len(value)
        return [plain(v) for v in value]
    return value


def node(layout):
    item_id, props, children = layout
    props = plain(props)
    return {
        "id": int(item_id),
        "label": props.get("label", ""),
        "type": props.get("type", "standard"),
        "enabled": props.get("enabled", True),
        "visible": props.get("visible", True),
        "toggleType": props.get("toggle-type", ""),
        "toggleState": props.get("toggle-state", -1),
        "children": [node(child) for child in children],
    }


def layout():
    bus = dbus.SessionBus()
    menu = menu_of(bus)
    revision, root = menu.GetLayout(0, -1, dbus.Array([], signature="s"), dbus_interface=MENU_IFACE)
    tree = node(root)
    tree["revision"] = int(revision)
    print(json.dumps(tree, ensure_ascii=False))


def click(item_id):
    bus = dbus.SessionBus()
    menu = menu_of(bus)
    menu.Event(
        dbus.Int32(item_id),
        "clicked",
        dbus.Int32(0, variant_level=1),
        dbus.UInt32(0),
        dbus_interface=MENU_IFACE,
    )


def icon():
    bus = dbus.SessionBus()
    service, path = first_item(bus)
    item = bus.get_object(service, path)
    props = item.GetAll(ITEM_IFACE, dbus_interface=PROPS)
    print(json.dumps({k: plain(v) for k, v in props.items()}, ensure_ascii=False))


def labels(node):
    for child in node["children"]:
        yield child["label"]
        yield from labels(child)


def latency(shown, gone, runs, command):
    import subprocess
    import time

    bus = dbus.SessionBus()
    menu = menu_of(bus)

    def wait_for(text, since):
        while time.monotonic() - since < 10:
            _, root = menu.GetLayout(0, -1, dbus.Array([], signature="s"), dbus_interface=MENU_IFACE)
            if any(text in label for label in labels(node(root))):
                return time.monotonic() - since
            time.sleep(0.005)
        sys.exit(f"tray-dbus: no menu item showed {text!r} within 10 s")

    for _ in range(runs):
        start = time.monotonic()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            print(round(wait_for(shown, start) * 1000), flush=True)
        finally:
            child.terminate()
            child.wait()
        wait_for(gone, time.monotonic())


def main(argv):
    if len(argv) >= 2 and argv[1] == "watch":
        watch()
    elif len(argv) == 2 and argv[1] == "layout":
        layout()
    elif len(argv) == 3 and argv[1] == "click":
        click(int(argv[2]))
    elif len(argv) == 2 and argv[1] == "icon":
        icon()
    elif len(argv) >= 7 and argv[1] == "latency" and argv[5] == "--":
        latency(argv[2], argv[3], int(argv[4]), argv[6:])
    elif len(argv) == 2 and argv[1] == "notifications":
        notifications()
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
